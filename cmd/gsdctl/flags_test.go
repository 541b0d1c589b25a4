package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestCtlFlagsListShowAndReview(t *testing.T) {
	addr := startNode(t)
	c := client.New([]string{addr})
	defer c.Close()
	raised, err := c.RaiseFlag(context.Background(), wire.FlagRaise{Detector: "funnel", Players: []string{"feeder", "main"}, Score: 12,
		Evidence: []wire.FlagRef{{World: "arena", Seq: 9}}, World: "arena", Incarnation: 1, RaisedBy: "ops"})
	require.NoError(t, err)
	require.True(t, raised.Created)
	id := raised.ID

	out := mustRun(t, "--addr", addr, "flags", "list")
	require.Contains(t, out, "DETECTOR")
	require.Contains(t, out, id)
	require.Contains(t, out, "feeder,main")
	out = mustRun(t, "--addr", addr, "-o", "json", "flags", "list", "--state", "confirmed")
	var list struct{ Flags []wire.Flag }
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Empty(t, list.Flags)

	var f wire.Flag
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "--addr", addr, "flags", "show", id)), &f))
	require.Equal(t, []wire.FlagRef{{World: "arena", Seq: 9}}, f.Evidence)

	var rv wire.FlagReviewed
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "--addr", addr, "flags", "confirm", id, "--by", "mia", "--reason", "ten gifts")), &rv))
	require.Equal(t, "confirmed", rv.Flag.State)
	code, _, stderr := ctl(t, "", "--addr", addr, "flags", "dismiss", id, "--by", "mia", "--reason", "oops")
	require.NotZero(t, code)
	require.Contains(t, stderr, "illegal_transition")
	mustRun(t, "--addr", addr, "flags", "appeal", id, "--by", "ann", "--reason", "my friend")
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "--addr", addr, "flags", "dismiss", id, "--by", "lead", "--reason", "friends")), &rv))
	require.Equal(t, "dismissed", rv.Flag.State)
	require.Len(t, rv.Flag.History, 3)
	out = mustRun(t, "--addr", addr, "flags", "list", "--player", "main", "--state", "dismissed")
	require.Contains(t, out, id)

	// Pages: two more flags, listed two at a time or all at once.
	for _, p := range []string{"ann", "bob"} {
		_, err := c.RaiseFlag(context.Background(), wire.FlagRaise{Detector: "speed", Players: []string{p}, Score: 0.9,
			Evidence: []wire.FlagRef{{World: "arena", Seq: 3}}, World: "arena", Incarnation: 1, RaisedBy: "ops"})
		require.NoError(t, err)
	}
	var page wire.FlagList
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "--addr", addr, "-o", "json", "flags", "list", "--limit", "2")), &page))
	require.Len(t, page.Flags, 2)
	require.Equal(t, id, page.Flags[0].ID, "oldest first")
	require.NotEmpty(t, page.NextCursor)
	out = mustRun(t, "--addr", addr, "flags", "list", "--limit", "2")
	require.Contains(t, out, "more: --cursor "+page.NextCursor)
	out = mustRun(t, "--addr", addr, "flags", "list", "--limit", "2", "--cursor", page.NextCursor)
	require.Contains(t, out, "bob")
	require.NotContains(t, out, "ann")
	require.NotContains(t, out, "more:")
	page = wire.FlagList{}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "--addr", addr, "-o", "json", "flags", "list", "--all")), &page))
	require.Len(t, page.Flags, 3)
	require.Empty(t, page.NextCursor)
	code, _, stderr = ctl(t, "", "--addr", addr, "flags", "list", "--all", "--cursor", "x")
	require.Equal(t, 1, code, stderr)
	code, _, stderr = ctl(t, "", "--addr", addr, "flags", "list", "--limit", "5000")
	require.NotZero(t, code)
	require.Contains(t, stderr, "limit")

	// Usage errors.
	code, _, stderr = ctl(t, "", "--addr", addr, "flags", "confirm", id)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "--reason")
	code, _, stderr = ctl(t, "", "--addr", addr, "flags", "list", "--token-file", filepath.Join(t.TempDir(), "none"))
	require.Equal(t, 1, code, stderr)
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("not-a-jwt\n"), 0o600))
	out = mustRun(t, "--addr", addr, "flags", "list", "--token-file", tok) // auth off: the token is not read
	require.True(t, strings.Contains(out, id))
}
