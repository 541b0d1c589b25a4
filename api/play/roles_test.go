package play

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The mallory probe over the play WebSocket: the connection's actions
// carry its token's role, so a player's raw set of another player's hit
// points is rejected forbidden by Apply, and a game server's applies.
func TestPlayActionsCarryTheTokensRole(t *testing.T) {
	n := startLeaderWith(t, fastPlay, withAuth)
	admin := "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims("ops"), Admin: true})
	code, _, b := n.env.Do("POST", "/v1/worlds", `{"id":"arena","rules":{"fields":{"hp":{"type":"int","policy":"authoritative","write":"owner"}}}}`,
		"Authorization", admin)
	require.Equal(t, http.StatusCreated, code, "%s", b)
	for _, c := range []struct{ player, role, status string }{
		{"mallory", "", "rejected"},
		{"gs1", fsm.RoleServer, "applied"},
	} {
		tok := sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims(c.player), Role: c.role})
		ws := dialPlay(t, n.env.WSURL("arena"))
		wsSend(t, ws, map[string]any{"type": "hello", "token": tok})
		require.Equal(t, "welcome", wsRecv(t, ws)["type"])
		wsSend(t, ws, map[string]any{"type": "action", "action": json.RawMessage(`{"seq":1,"ops":[{"op":"set","entity":"ann","field":"hp","value":999999}]}`)})
		for {
			m := wsRecv(t, ws)
			if m["type"] != "result" {
				continue
			}
			ev := m["event"].(map[string]any)
			require.Equal(t, c.status, ev["status"], "%s: %v", c.player, ev)
			if c.status == "rejected" {
				require.Equal(t, fsm.CodeForbidden, ev["reason"])
			}
			break
		}
	}
}

// Over the per-player rate limit, a play action is answered with an error
// message (rate_limited) and the connection stays open.
func TestPlayActionsOverTheRateLimitGetAnErrorAndTheConnectionStays(t *testing.T) {
	n := startLeaderWith(t, fastPlay, func(c *nodeConfig) { c.PlayerRate, c.PlayerBurst = 0.001, 1 })
	n.env.Do("POST", "/v1/worlds", arenaBody)
	ws := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, ws, "ann")
	result := func(seq int) map[string]any {
		wsSend(t, ws, map[string]any{"type": "action", "action": json.RawMessage(actBody("ann", seq))})
		for {
			if m := wsRecv(t, ws); m["type"] == "result" || m["type"] == "error" {
				return m
			}
		}
	}
	require.Equal(t, "result", result(1)["type"])
	m := result(2)
	require.Equal(t, "error", m["type"], "%v", m)
	require.Equal(t, edge.CodeRateLimited, m["code"])
	require.Equal(t, 2.0, m["seq"])
	wsSend(t, ws, map[string]any{"type": "ping", "t": 7})
	for {
		if m := wsRecv(t, ws); m["type"] == "pong" {
			break
		}
	}
}
