package main

import (
	"encoding/json"
	"testing"

	"github.com/gsd-dev/gsd/client"
	"github.com/stretchr/testify/require"
)

// TestCtlWorldListFiltersAndPagesAndWorldDeleteRemoves: the matchmaker's
// listing and the admin's delete from the command line.
func TestCtlWorldListFiltersAndPagesAndWorldDeleteRemoves(t *testing.T) {
	addr := startNode(t)
	with := func(args ...string) []string { return append([]string{"--addr", addr, "--timeout", "30s"}, args...) }
	mustRun(t, with("world", "create", "a1", "--rules", `{"mode":"duel","capacity":2,"labels":{"map":"dust"}}`)...)
	mustRun(t, with("world", "create", "a2", "--rules", `{"mode":"ffa","labels":{"map":"dust"}}`)...)
	mustRun(t, with("world", "create", "b1", "--rules", `{"mode":"duel"}`)...)

	type page struct {
		Worlds []client.World `json:"worlds"`
		Next   string         `json:"next"`
	}
	list := func(args ...string) page {
		t.Helper()
		var p page
		require.NoError(t, json.Unmarshal([]byte(mustRun(t, with(append([]string{"world", "list", "-o", "json"}, args...)...)...)), &p))
		return p
	}
	names := func(p page) []string {
		out := []string{}
		for _, w := range p.Worlds {
			out = append(out, w.ID)
		}
		return out
	}
	require.Equal(t, []string{"a1", "b1"}, names(list("--mode", "duel")))
	require.Equal(t, []string{"a1"}, names(list("--mode", "duel", "--label", "map:dust", "--has-capacity", "true", "--min-players", "0", "--max-players", "5")))
	p := list("--limit", "2")
	require.Equal(t, []string{"a1", "a2"}, names(p))
	require.Equal(t, "a2", p.Next)
	require.Equal(t, []string{"b1"}, names(list("--limit", "2", "--cursor", p.Next)))
	text := mustRun(t, with("world", "list", "--limit", "1")...)
	require.Contains(t, text, "(more: --cursor a1)")
	require.Contains(t, text, "SESSIONS")
	require.Contains(t, text, "INCARNATION")
	for _, bad := range [][]string{{"--label", "map"}, {"--has-capacity", "maybe"}} {
		code, _, errOut := ctl(t, "", with(append([]string{"world", "list"}, bad...)...)...)
		require.Equal(t, 1, code, errOut)
		require.Contains(t, errOut, "for usage", "a usage error")
	}

	inc := p.Worlds[0].Incarnation
	require.NotZero(t, inc)
	code, _, errOut := ctl(t, "", with("world", "delete", "a1", "--incarnation", "1")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "unknown_world")
	var gone map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("world", "delete", "a1", "--incarnation", jsonNumber(inc))...)), &gone))
	require.Equal(t, map[string]any{"ok": true, "id": "a1", "incarnation": float64(inc), "seq": float64(0)}, gone)
	require.Equal(t, []string{"a2", "b1"}, names(list()))
}

func jsonNumber(u uint64) string {
	b, _ := json.Marshal(u)
	return string(b)
}
