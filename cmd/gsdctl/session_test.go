package main

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestCtlSessionExportImportBanAndPresence(t *testing.T) {
	addr := startNode(t)
	with := func(args ...string) []string { return append([]string{"--addr", addr, "--timeout", "30s"}, args...) }
	mustRun(t, with("world", "create", "arena")...)

	file := `{"format":"gsd.players.v1","world":"arena","players":[{"player":"ann","data":{"gold":40,"vip":true}}]}`
	for range 2 { // idempotent
		code, out, errOut := ctl(t, file, with("session", "import", "arena")...)
		require.Equal(t, 0, code, errOut)
		require.JSONEq(t, `{"ok":true,"world":"arena","imported":1,"players":[{"player":"ann","data":"applied"}]}`, out)
	}
	// A file whose data version is ahead of what the cluster gives the
	// player (its clock ran ahead): set, but reported behind.
	ahead := `{"format":"gsd.players.v1","world":"arena","players":[` +
		`{"player":"bob","data":{"gold":1},"data_version":9223372036854775807},{"player":"cy","data":{"gold":2}}]}`
	code, out, errOut := ctl(t, ahead, with("session", "import", "arena")...)
	require.Equal(t, 0, code, errOut)
	require.JSONEq(t, `{"ok":true,"world":"arena","imported":2,"players":[{"player":"bob","data":"behind"},{"player":"cy","data":"applied"}]}`, out)
	require.Contains(t, errOut, "1 player(s) behind")
	var f client.PlayerDataFile
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("session", "export", "arena")...)), &f))
	require.Equal(t, client.PlayerDataFormat, f.Format)
	require.Equal(t, "ann", f.Players[0].Player)
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(40), "vip": wire.Bool(true)}, f.Players[0].Data)
	code, _, errOut = ctl(t, "{nope", with("session", "import", "arena")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "player data")

	require.JSONEq(t, `{"ok":true}`, mustRun(t, with("session", "ban", "arena", "eve", "--reason", "cheat")...))
	require.JSONEq(t, `{"world":"arena","bans":[{"player":"eve","reason":"cheat"}]}`, mustRun(t, with("session", "bans", "arena")...))
	require.JSONEq(t, `{"ok":true}`, mustRun(t, with("session", "unban", "arena", "eve")...))
	code, _, errOut = ctl(t, "", with("session", "ban", "arena", "eve")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--reason is required")

	require.Contains(t, mustRun(t, with("session", "list", "arena")...), "SESSION")
	require.JSONEq(t, `{"world":"arena","sessions":[]}`, mustRun(t, with("-o", "json", "session", "ls", "arena")...))
	code, _, errOut = ctl(t, "", with("session", "kick", "arena", "nope", "--reason", "x")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "session_unknown")
}

func TestCtlSessionDataMergesDeletesAndChecksTheVersion(t *testing.T) {
	addr := startNode(t)
	with := func(args ...string) []string { return append([]string{"--addr", addr, "--timeout", "30s"}, args...) }
	mustRun(t, with("world", "create", "arena")...)

	var first wire.PlayerData
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("session", "data", "arena", "ann", "--json", `{"gold":40,"title":"rookie"}`)...)), &first))
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(40), "title": wire.String("rookie")}, first.Data)
	require.NotZero(t, first.DataVersion)

	// From stdin, conditional on the version just read: gold changes,
	// title goes, nothing else is touched.
	var second wire.PlayerData
	code, out, errOut := ctl(t, `{"gold":41,"title":null}`, with("session", "data", "arena", "ann", "--expect-version", strconv.FormatUint(first.DataVersion, 10))...)
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &second))
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(41)}, second.Data)
	require.Greater(t, second.DataVersion, first.DataVersion)

	// A stale version changes nothing.
	code, _, errOut = ctl(t, "", with("session", "data", "arena", "ann", "--json", `{"gold":0}`, "--expect-version", strconv.FormatUint(first.DataVersion, 10))...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "data_conflict")
	var f client.PlayerDataFile
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, with("session", "export", "arena")...)), &f))
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(41)}, f.Players[0].Data)

	for _, bad := range []string{"", "{}", `{"gold":1} {}`, "[1]"} {
		code, _, errOut = ctl(t, bad, with("session", "data", "arena", "ann")...)
		require.Equal(t, 1, code, "input %q: %s", bad, errOut)
		require.Contains(t, errOut, "for usage", bad)
		require.Contains(t, errOut, "data", bad)
	}
}
