package api

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// roleToken signs a token for player with the role claim (and the admin
// claim when admin).
func roleToken(t *testing.T, player, role string, admin bool) string {
	return "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims(player), Role: role, Admin: admin})
}

// hpRules: ann's hp is hers to write; "note" has no write rule, and the
// world declares an action, so a player writes it only through one, while
// the rules' role gm may send raw ops.
const hpRules = `{"id":"arena","rules":{"fields":{
	"hp":{"type":"int","policy":"authoritative","write":"owner"},
	"note":{"type":"string","policy":"authoritative"}},
	"actions":{"wave":{"effects":[{"op":"set","entity":"caller.id","field":"note","value":"'hi'"}]}},
	"roles":{"gm":{"raw":true}}}}`

// The mallory probe of issue 12, over HTTP with auth on: a player's raw
// set of another player's hit points is refused with fsm's code, while the
// owner, a game server, an admin and a raw role may write it.
func TestMalloryProbeIsRefusedAndServersAndAdminsMayWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln, withAuth)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	admin := roleToken(t, "ops", "", true)
	code, _, b := n.env.Do("POST", "/v1/worlds", hpRules, "Authorization", admin)
	require.Equal(t, http.StatusCreated, code, "%s", b)

	set := func(seq int) string {
		return `{"seq":` + string(rune('0'+seq)) + `,"ops":[{"op":"set","entity":"ann","field":"hp","value":999999}]}`
	}
	for i, c := range []struct {
		who, tok, status, reason string
	}{
		{"mallory", roleToken(t, "mallory", "", false), "rejected", fsm.CodeForbidden},
		{"mallory naming the player role", roleToken(t, "mallory", fsm.RolePlayer, false), "rejected", fsm.CodeForbidden},
		{"mallory with a role the rules do not declare", roleToken(t, "mallory", "wizard", false), "rejected", fsm.CodeForbidden},
		{"ann, the owner", roleToken(t, "ann", "", false), "applied", ""},
		{"a game server", roleToken(t, "gs1", fsm.RoleServer, false), "applied", ""},
		{"an admin by claim", admin, "applied", ""},
		{"an admin by role", roleToken(t, "ops2", fsm.RoleAdmin, false), "applied", ""},
	} {
		code, m := n.env.DoJSON("POST", "/v1/worlds/arena/actions", set(i+1), "Authorization", c.tok)
		require.Equal(t, http.StatusOK, code, "%s: %v", c.who, m)
		require.Equal(t, c.status, m["status"], "%s: %v", c.who, m)
		if c.reason != "" {
			require.Equal(t, c.reason, m["reason"], c.who)
		}
	}

	// note: a player only through the declared action; the raw role gm
	// directly; the batch route carries the role as well.
	mallory := roleToken(t, "mallory", "", false)
	note := `{"seq":8,"ops":[{"op":"set","entity":"mallory","field":"note","value":"x"}]}`
	_, m := n.env.DoJSON("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+note+`,{"seq":9,"action":"wave"}]}`, "Authorization", mallory)
	res := m["results"].([]any)
	require.Equal(t, fsm.CodeForbidden, res[0].(map[string]any)["reason"], "%v", res)
	require.Equal(t, "applied", res[1].(map[string]any)["status"], "%v", res)
	_, m = n.env.DoJSON("POST", "/v1/worlds/arena/actions", note, "Authorization", roleToken(t, "gm1", "gm", false))
	require.Equal(t, "applied", m["status"], "%v", m)
}

// A client cannot give itself a role: the body has no key for it, and a
// token whose claims disagree, or name no valid role, is refused.
func TestARoleComesOnlyFromAValidToken(t *testing.T) {
	t.Parallel()
	fake := apitest.NewFake()
	e := newEnv(t, fake, withAuth)
	e.Do("POST", "/v1/worlds", arenaBody, "Authorization", roleToken(t, "ops", "", true))
	mallory := roleToken(t, "mallory", "", false)
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", "/v1/worlds/arena/actions",
		`{"seq":1,"role":"admin","ops":[{"op":"set","entity":"ann","field":"hp","value":1}]}`, "Authorization", mallory)
	for what, tok := range map[string]string{
		"admin claim and another role": roleToken(t, "mallory", fsm.RoleServer, true),
		"a role name too long":         "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims("mallory"), Role: string(make([]byte, fsm.MaxNameLen+1))}),
	} {
		m := e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/actions", `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`, "Authorization", tok)
		require.Contains(t, m["error"], "role", what)
	}
	require.Zero(t, fake.Acts)
	code, _, b := e.Do("POST", "/v1/worlds/arena/actions", `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`,
		"Authorization", roleToken(t, "ann", "", true))
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Equal(t, fsm.RoleAdmin, fake.LastAction.Role, "admin claim with the admin role")
}

// A follower forwards the caller's token, never a role: the leader
// verifies the token again and takes the role from it, so a forged
// forwarded call cannot raise a player's role.
func TestTheLeaderTakesTheRoleFromTheForwardedToken(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t, withAuth)
	for _, c := range []struct{ tok, role string }{
		{roleToken(t, "ann", "", false), fsm.RolePlayer},
		{roleToken(t, "gs1", fsm.RoleServer, false), fsm.RoleServer},
		{roleToken(t, "medic1", "medic", false), "medic"},
	} {
		for _, path := range []string{"/v1/worlds/arena/actions", "/v1/worlds/arena/actions:batch"} {
			body := `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
			if path != "/v1/worlds/arena/actions" {
				body = `{"actions":[` + body + `]}`
			}
			code, _, b := follower.Do("POST", path, body, "Authorization", c.tok)
			require.Equal(t, http.StatusOK, code, "%s", b)
			require.Equal(t, c.role, leader.Fake.LastAction.Role, path)
		}
	}
	// A forwarded call straight to the leader, with a forged role in the
	// body, is malformed; with a player's token it acts as a player.
	leader.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", edge.InternalActPath("arena"),
		`{"seq":2,"role":"server","ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`,
		edge.HeaderForwarded, "1", "Authorization", roleToken(t, "ann", "", false))
	code, _, b := leader.Do("POST", edge.InternalActPath("arena"), `{"seq":2,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`,
		edge.HeaderForwarded, "1", "Authorization", roleToken(t, "ann", "", false))
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Equal(t, fsm.RolePlayer, leader.Fake.LastAction.Role)
}
