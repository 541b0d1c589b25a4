package client

import (
	"context"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestSessionAdminCallsUseTheirEndpoints(t *testing.T) {
	n := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/worlds/arena/sessions":
			writeJSON(w, 200, map[string]any{"world": "arena", "sessions": []any{map[string]any{"world": "arena", "id": "s1", "player": "ann", "acked": 4, "node": "n2"}}})
		case "POST /v1/worlds/arena/sessions/s1/kick":
			writeJSON(w, 200, map[string]any{"world": "arena", "id": "s1", "player": "ann", "kicked": "afk"})
		case "POST /v1/worlds/arena/bans", "DELETE /v1/worlds/arena/bans/eve":
			writeJSON(w, 200, map[string]any{"world": "arena", "player": "eve"})
		case "GET /v1/worlds/arena/bans":
			writeJSON(w, 200, map[string]any{"world": "arena", "bans": []any{map[string]any{"player": "eve", "reason": "cheat"}}})
		case "GET /v1/worlds/arena/sessions:export":
			writeJSON(w, 200, map[string]any{"format": PlayerDataFormat, "world": "arena", "players": []any{map[string]any{"player": "ann", "data": map[string]any{"gold": 5}}}})
		case "POST /v1/worlds/arena/sessions:import":
			writeJSON(w, 200, map[string]any{"world": "arena", "imported": 1})
		default:
			writeErr(w, 404, "not_found", r.URL.Path)
		}
	})
	c := newTestClient(t, []string{n.URL})
	ctx := context.Background()
	s, err := c.Sessions(ctx, "arena")
	require.NoError(t, err)
	require.Equal(t, []SessionInfo{{World: "arena", ID: "s1", Player: "ann", Acked: 4, Node: "n2"}}, s)
	k, err := c.Kick(ctx, "arena", "s1", "afk")
	require.NoError(t, err)
	require.Equal(t, "afk", k.Kicked)
	_, err = c.Kick(ctx, "arena", "s1", "")
	require.NoError(t, err)
	require.NoError(t, c.Ban(ctx, "arena", "eve", "cheat"))
	require.NoError(t, c.Unban(ctx, "arena", "eve"))
	bans, err := c.Bans(ctx, "arena")
	require.NoError(t, err)
	require.Equal(t, []Ban{{Player: "eve", Reason: "cheat"}}, bans)
	f, err := c.ExportPlayerData(ctx, "arena")
	require.NoError(t, err)
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(5)}, f.Players[0].Data)
	imported, err := c.ImportPlayerData(ctx, "arena", f)
	require.NoError(t, err)
	require.Equal(t, 1, imported)
	reqs := n.requests()
	require.JSONEq(t, `{"reason":"afk"}`, reqs[1].Body)
	require.JSONEq(t, `{}`, reqs[2].Body)
	require.JSONEq(t, `{"player":"eve","reason":"cheat"}`, reqs[3].Body)
}
