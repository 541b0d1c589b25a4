package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The credential classes of the access table (api/edge/access.go).
const (
	needsNothing  = "open"
	needsPlay     = "play"     // the hello carries the token
	needsAnyToken = "token"    // any valid token, or the secret
	needsServer   = "server"   // a server or admin token, or the secret
	needsAdmin    = "admin"    // an admin token, or the secret
	needsSecret   = "internal" // the secret only
)

// allRoutes is one request per route every surface registers (public,
// admin, play, streams, peer, metrics), with what it needs when auth is
// on. A route added to a surface belongs here. (The audit routes exist
// only on a node with an audit log: api/audit's tests; their access is in
// api/edge/access.go's table.)
var allRoutes = []struct{ method, path, body, needs string }{
	{"GET", "/healthz", "", needsNothing},
	{"GET", "/readyz", "", needsNothing},
	{"GET", "/metrics", "", needsNothing},
	{"GET", "/v1/worlds/arena/play", "", needsPlay},
	{"GET", "/v1/worlds", "", needsAnyToken},
	{"GET", "/v1/worlds/arena", "", needsAnyToken},
	{"POST", "/v1/worlds/arena/actions", `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`, needsAnyToken},
	{"POST", "/v1/worlds/arena/actions:batch", `{"actions":[{"seq":2,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}]}`, needsAnyToken},
	{"GET", "/v1/worlds/arena/entities/e1", "", needsAnyToken},
	{"GET", "/v1/worlds/arena/hash", "", needsAnyToken},
	{"GET", "/v1/worlds/nowhere/events", "", needsAnyToken},
	{"GET", "/v1/worlds/arena/sessions", "", needsAnyToken},
	{"GET", "/v1/worlds/arena/bans", "", needsAnyToken},
	{"GET", "/v1/status", "", needsAnyToken},
	{"GET", "/v1/worlds/arena/watch", "", needsAnyToken},
	{"GET", "/v1/worlds/arena/watch/index.json", "", needsAnyToken},
	{"GET", "/v1/worlds/arena/watch/seg/1.ndjson", "", needsAnyToken},
	{"GET", "/v1/worlds/arena/views", "", needsAnyToken},
	{"GET", "/v1/worlds/arena/views/score", "", needsAnyToken},
	{"POST", "/v1/worlds", `{"id":"lobby"}`, needsServer},
	{"PUT", "/v1/worlds/arena/rules", strictBody, needsServer},
	{"POST", "/v1/cluster/join", `{"id":"n3","raft_addr":"127.0.0.1:1"}`, needsAdmin},
	{"DELETE", "/v1/cluster/nodes/n3", "", needsAdmin},
	{"POST", "/v1/cluster/transfer-leadership", "", needsAdmin},
	{"POST", "/v1/cluster/snapshot", "", needsAdmin},
	{"GET", "/v1/cluster/backup", "", needsAdmin},
	{"POST", "/v1/worlds/arena/sessions/s1/kick", `{"reason":"spam"}`, needsAdmin},
	{"GET", "/v1/worlds/arena/sessions:export", "", needsAdmin},
	{"POST", "/v1/worlds/arena/sessions:import", `{"players":[{"player":"p1","data":{"gold":1}}]}`, needsAdmin},
	{"POST", "/v1/worlds/arena/bans", `{"player":"bob"}`, needsAdmin},
	{"DELETE", "/v1/worlds/arena/bans/bob", "", needsAdmin},
	{"POST", "/v1/node/drain", "", needsAdmin},
	{"DELETE", "/v1/node/drain", "", needsAdmin},
	{"DELETE", "/v1/worlds/lobby", "", needsAdmin},
	{"POST", "/v1/worlds/arena/sessions/ack", `{"id":"s1"}`, needsSecret},
	{"POST", "/v1/sessions:acks", `{"acks":[{"world":"arena","id":"s1","seq":1}]}`, needsSecret},
}

// every internal route, from the node-to-node tests' lists.
func internalRoutes() []struct{ method, path, body string } {
	var out []struct{ method, path, body string }
	for _, c := range internalCalls {
		out = append(out, struct{ method, path, body string }{c.method, edge.InternalPrefix + c.path, c.body})
	}
	for _, c := range internalAdminCalls {
		out = append(out, struct{ method, path, body string }{c.method, edge.InternalPrefix + c.path, c.body})
	}
	return out
}

// roleHeader is the Authorization header of a token of player with role.
func roleHeader(t *testing.T, key []byte, player, role string) []string {
	return []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, key, edge.AdminClaims{RegisteredClaims: claims(player), Role: role})}
}

func requireRefused(t *testing.T, e *testEnv, status int, method, path, body string, hdr ...string) {
	t.Helper()
	code, h, b := e.Do(method, path, body, hdr...)
	require.Equal(t, status, code, "%s %s with %v: %s", method, path, hdr, b)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	if status == http.StatusUnauthorized {
		require.Equal(t, edge.CodeUnauthorized, m["code"])
		require.NotEmpty(t, h.Get("WWW-Authenticate"))
	} else {
		require.Equal(t, edge.CodeForbidden, m["code"])
	}
}

// requireServed checks that the request passed the access checks: its
// answer, whatever it is, is not a refusal for the credential (nor a
// route that does not exist).
func requireServed(t *testing.T, e *testEnv, method, path, body string, hdr ...string) {
	t.Helper()
	code, _, b := e.Do(method, path, body, hdr...)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	require.NotContains(t, []any{edge.CodeUnauthorized, edge.CodeForbidden, edge.CodeMethodNotAllowed}, m["code"], "%s %s with %v: %s", method, path, hdr, b)
	require.False(t, code == http.StatusNotFound && m["error"] == "no such route", "%s %s: %s", method, path, b)
}

// With auth on, every route but health, readiness and metrics refuses a
// missing or wrong credential, a player's token where a server's or an
// admin's is needed, and serves the right one; with the cluster secret
// too, and without it.
func TestAuthOnGuardsEveryRoute(t *testing.T) {
	t.Parallel()
	for _, secret := range []bool{true, false} {
		opts := []func(*Config){withAuth}
		if secret {
			opts = append(opts, withSecret)
		}
		fake := apitest.NewFake()
		require.NoError(t, fake.CreateWorld(context.Background(), "arena", fsm.Rules{}))
		e := newEnv(t, fake, opts...)
		player := roleHeader(t, keys.HS, "ann", "")
		server := roleHeader(t, keys.HS, "gs1", fsm.RoleServer)
		admin := roleHeader(t, keys.HS, "ops", fsm.RoleAdmin)
		forged := roleHeader(t, keys.OtherHS, "ops", fsm.RoleAdmin)
		expired := []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ops", func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-apitest.Auth().Leeway - 1))
		}))}
		wrongSecret := []string{edge.HeaderClusterKey, "not-the-secret-not-the-secret-not-the-secret"}
		for _, c := range allRoutes {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				e := e.With(t)
				if c.needs == needsNothing || c.needs == needsPlay {
					requireServed(t, e, c.method, c.path, c.body)
					return
				}
				if c.needs == needsSecret && !secret {
					// Without a secret only nodes forward (HeaderForwarded).
					requireRefused(t, e, http.StatusForbidden, c.method, c.path, c.body)
					return
				}
				for _, bad := range [][]string{nil, forged, expired} {
					requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body, bad...)
				}
				if secret {
					requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body, wrongSecret...)
				}
				right := map[string][]string{needsAnyToken: player, needsServer: server, needsAdmin: admin}[c.needs]
				switch c.needs {
				case needsServer:
					requireRefused(t, e, http.StatusForbidden, c.method, c.path, c.body, player...)
					requireServed(t, e, c.method, c.path, c.body, admin...)
				case needsAdmin:
					requireRefused(t, e, http.StatusForbidden, c.method, c.path, c.body, player...)
					requireRefused(t, e, http.StatusForbidden, c.method, c.path, c.body, server...)
				case needsSecret:
					requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body, admin...)
				}
				if right != nil {
					requireServed(t, e, c.method, c.path, c.body, right...)
				}
				switch {
				case !secret:
				case c.needs == needsSecret:
					requireServed(t, e, c.method, c.path, c.body, edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1")
				case strings.Contains(c.path, "/actions"), strings.Contains(c.path, "/watch"), strings.Contains(c.path, "/views"):
					// An action is a player's, a watch a viewer's: the
					// secret opens the route, the token names who.
					requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body, edge.HeaderClusterKey, testSecret)
				default:
					requireServed(t, e, c.method, c.path, c.body, edge.HeaderClusterKey, testSecret)
				}
			})
		}
	}
}

// Internal routes: with a secret only it opens them; without one (auth
// on) a node forwards its caller's token, which is checked as on the
// public route the call serves.
func TestAuthOnGuardsEveryInternalRoute(t *testing.T) {
	t.Parallel()
	for _, secret := range []bool{true, false} {
		opts := []func(*Config){withAuth}
		if secret {
			opts = append(opts, withSecret)
		}
		fake := apitest.NewFake()
		require.NoError(t, fake.CreateWorld(context.Background(), "arena", fsm.Rules{}))
		e := newEnv(t, fake, opts...)
		fwd := []string{edge.HeaderForwarded, "1"}
		for _, c := range internalRoutes() {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				e := e.With(t)
				if secret {
					requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body, fwd...)
					requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body, append(fwd, apitest.AdminHeader(t)...)...)
					return
				}
				if c.path == edge.InternalSessionPath("arena", "open") || c.path == edge.InternalAcksPath {
					// The session commands: HeaderForwarded and, for open
					// and resume, the player's token (api/peer).
					requireRefused(t, e, http.StatusForbidden, c.method, c.path, c.body)
					return
				}
				requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body)
				requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body, fwd...)
				requireRefused(t, e, http.StatusUnauthorized, c.method, c.path, c.body, append(fwd, roleHeader(t, keys.OtherHS, "ops", fsm.RoleAdmin)...)...)
			})
		}
	}
	// Without a secret, the forwarded token's role counts as on the public
	// route: a player may act, not create a world nor transfer leadership.
	fake := apitest.NewFake()
	require.NoError(t, fake.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	e := newEnv(t, fake, withAuth)
	fwd := append([]string{edge.HeaderForwarded, "1"}, roleHeader(t, keys.HS, "ann", "")...)
	requireServed(t, e, "POST", edge.InternalActPath("arena"), `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`, fwd...)
	requireRefused(t, e, http.StatusForbidden, "POST", edge.InternalWorldsPath, `{"id":"lobby"}`, fwd...)
	requireRefused(t, e, http.StatusForbidden, "POST", edge.InternalClusterPath+"/transfer-leadership", "", fwd...)
	admin := append([]string{edge.HeaderForwarded, "1"}, apitest.AdminHeader(t)...)
	requireServed(t, e, "POST", edge.InternalWorldsPath, `{"id":"lobby"}`, admin...)
}

// With auth off and no secret every route stays open, as before.
func TestWithoutAuthOrSecretEveryPublicRouteIsOpen(t *testing.T) {
	t.Parallel()
	fake := apitest.NewFake()
	require.NoError(t, fake.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	e := newEnv(t, fake)
	for _, c := range allRoutes {
		hdr := []string(nil)
		if c.needs == needsSecret {
			hdr = []string{edge.HeaderForwarded, "1"}
		}
		requireServed(t, e, c.method, c.path, strings.ReplaceAll(c.body, `{"seq":`, `{"player":"p1","seq":`), hdr...)
	}
}
