package api

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/credential"
	"github.com/stretchr/testify/require"
)

const testSecret = "0123456789abcdef0123456789abcdef-cluster"

func withSecret(c *Config) { c.ClusterSecret = []byte(testSecret) }

func TestClusterSecretGuardsAdminAndInternalEndpointsAndForwardingStillWorks(t *testing.T) {
	// startPlayCluster joins with the secret: a join without it fails below.
	nodes := startPlayCluster(t, 2, withSecret, fastPlay)
	l, f := nodes[0], nodes[1]
	key := []string{edge.HeaderClusterKey, testSecret}
	l.env.do("POST", "/v1/worlds", arenaBody) // public
	code, _, _ := f.env.do("POST", "/v1/worlds/arena/actions", actBody("bob", 1))
	require.Equal(t, 200, code, "public routes stay open, forwarded with the secret")

	admin := []struct{ method, path, body string }{
		{"POST", "/v1/cluster/join", `{"id":"n9","raft_addr":"127.0.0.1:1"}`},
		{"DELETE", "/v1/cluster/nodes/n9", ""},
		{"POST", "/v1/cluster/transfer-leadership", ""},
		{"POST", "/v1/cluster/snapshot", ""},
		{"POST", "/v1/worlds/arena/sessions/s1/kick", ""},
		{"GET", "/v1/worlds/arena/sessions:export", ""},
		{"POST", "/v1/worlds/arena/sessions:import", `{"players":[]}`},
		{"POST", "/v1/worlds/arena/bans", `{"player":"bob"}`},
		{"DELETE", "/v1/worlds/arena/bans/bob", ""},
		{"POST", "/v1/node/drain", ""},
		{"DELETE", "/v1/node/drain", ""},
	}
	for _, n := range nodes {
		for _, r := range admin {
			m := n.env.with(t).requireError(401, edge.CodeUnauthorized, r.method, r.path, r.body)
			require.Contains(t, m["error"], edge.HeaderClusterKey, "%s %s", r.method, r.path)
			m = n.env.with(t).requireError(401, edge.CodeUnauthorized, r.method, r.path, r.body, edge.HeaderClusterKey, testSecret+"x")
			require.Contains(t, m["error"], "wrong cluster secret")
			// No auth configured: a Bearer token cannot be an admin token.
			n.env.with(t).requireError(401, edge.CodeUnauthorized, r.method, r.path, r.body, "Authorization", "Bearer x.y.z")
		}
		// The internal endpoint, even with the forwarding mark.
		m := n.env.requireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/sessions/ack", `{"id":"s1","seq":1}`, edge.HeaderForwarded, "1")
		require.Contains(t, m["error"], "internal endpoint")
		// A forged forwarding mark on a public route.
		n.env.requireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/actions", actBody("bob", 2), edge.HeaderForwarded, "1")
	}

	// With the secret: kick and ban through the follower (forwarded).
	c := dialPlay(t, l.env.wsURL("arena"))
	w := welcome(t, c, "ann")
	code, m := f.env.doJSON("POST", "/v1/worlds/arena/sessions/"+w["session"].(string)+"/kick", `{"reason":"spam"}`, key...)
	require.Equal(t, 200, code, "%v", m)
	wsClosed(t, c, 4403, fsm.CodeSessionKicked)
	code, m = f.env.doJSON("POST", "/v1/worlds/arena/bans", `{"player":"eve","reason":"x"}`, key...)
	require.Equal(t, 200, code, "%v", m)
	code, m = f.env.doJSON("DELETE", "/v1/worlds/arena/bans/eve", "", key...)
	require.Equal(t, 200, code, "%v", m)
	code, _, b := f.env.do("GET", "/v1/worlds/arena/sessions:export", "", key...)
	require.Equal(t, 200, code, "%s", b)

	// Play on the follower: its session commands reach the leader's
	// internal endpoint with the secret.
	c2 := dialPlay(t, f.env.wsURL("arena"))
	welcome(t, c2, "bob")
	wsSend(t, c2, map[string]any{"type": "action", "action": map[string]any{
		"seq": 5, "ops": []any{map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": 1}}}})
	for {
		m := wsRecv(t, c2)
		if m["type"] == "result" {
			break
		}
		require.Equal(t, "events", m["type"], "%v", m)
	}
}

func TestClusterSecretAcceptsAdminTokensOnly(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, withAuth, withSecret)
	e.do("POST", "/v1/worlds", arenaBody)
	adminTok := sign(t, jwt.SigningMethodHS256, keys.hs, edge.AdminClaims{RegisteredClaims: claims("ops"), Admin: true})
	code, _, b := e.do("DELETE", "/v1/node/drain", "", "Authorization", "Bearer "+adminTok)
	require.Equal(t, 200, code, "%s", b)
	code, _, b = e.do("DELETE", "/v1/node/drain", "", edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%s", b)

	player := sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann"))
	m := e.requireError(403, edge.CodeForbidden, "DELETE", "/v1/node/drain", "", "Authorization", "Bearer "+player)
	require.Contains(t, m["error"], credential.AdminClaim)
	forged := sign(t, jwt.SigningMethodHS256, keys.otherHS, edge.AdminClaims{RegisteredClaims: claims("ops"), Admin: true})
	e.requireError(401, edge.CodeUnauthorized, "DELETE", "/v1/node/drain", "", "Authorization", "Bearer "+forged)
	// An admin token is no key to the internal endpoint.
	m = e.requireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/sessions/ack", `{"id":"s1"}`, edge.HeaderForwarded, "1", "Authorization", "Bearer "+adminTok)
	require.Contains(t, m["error"], "internal endpoint")
	// Players' routes are unchanged.
	code, _, b = e.do("POST", "/v1/worlds/arena/actions", incrBody, "Authorization", "Bearer "+sign(t, jwt.SigningMethodHS256, keys.hs, claims("p1")))
	require.Equal(t, 200, code, "%s", b)
}

func TestClusterSecretConfig(t *testing.T) {
	for _, bad := range []string{"short", strings.Repeat("a", 31) + " ", strings.Repeat("é", 20)} {
		cfg := testConfig()
		cfg.ClusterSecret = []byte(bad)
		require.ErrorContains(t, cfg.Validate(), "ClusterSecret", "%q", bad)
	}
	cfg := testConfig()
	cfg.TransferTicketTTL = 0
	require.ErrorContains(t, cfg.Validate(), "TransferTicketTTL")
}
