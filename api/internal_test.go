package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// internalCalls lists one request per route of the node-to-node service.
var internalCalls = []struct{ method, pattern, path, body string }{
	{"POST", "/worlds/{world}/actions", "/worlds/arena/actions", incrBody},
	{"POST", "/worlds/{world}/actions:batch", "/worlds/arena/actions:batch", `{"actions":[` + incrBody + `]}`},
	{"POST", "/worlds/{world}/actions:forward", "/worlds/arena/actions:forward", actRouteBody(&fsm.Action{World: "arena", Player: "p1", Seq: 2,
		Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: 1}}})},
	{"GET", "/worlds/{world}/entities/{entity}", "/worlds/arena/entities/e1", ""},
	{"POST", "/worlds/{world}/sessions/{op}", "/worlds/arena/sessions/open", `{"id":"s1","player":"p1"}`},
	{"POST", "/sessions:acks", "/sessions:acks", `{"acks":[{"world":"arena","id":"s1","seq":1}]}`},
	{"POST", "/worlds/{world}/checkpoints:mismatch", "/worlds/arena/checkpoints:mismatch", `{"node":"n2","index":7,"leader":"n1","leader_hash":"ab","hash":"cd"}`},
}

// internalAdminCalls lists one request per admin or world call of the
// node-to-node service (its public route is "/v1" + path), with the status
// a leader over the fake answers it after internalCalls (which open s1):
// the fake knows no bans, so ban and unban find no session, and it holds
// no player data.
var internalAdminCalls = []struct {
	method, pattern, path, body string
	code                        int
}{
	{"POST", "/worlds", "/worlds", `{"id":"lobby"}`, 201},
	{"PUT", "/worlds/{world}/rules", "/worlds/arena/rules", strictBody, 200},
	{"POST", "/cluster/join", "/cluster/join", `{"id":"n3","raft_addr":"127.0.0.1:1"}`, 200},
	{"DELETE", "/cluster/nodes/{id}", "/cluster/nodes/n3", "", 200},
	{"POST", "/cluster/transfer-leadership", "/cluster/transfer-leadership", "", 200},
	{"POST", "/worlds/{world}/sessions/{id}/kick", "/worlds/arena/sessions/s1/kick", `{"reason":"spam"}`, 200},
	{"POST", "/worlds/{world}/bans", "/worlds/arena/bans", `{"player":"bob"}`, 404},
	{"DELETE", "/worlds/{world}/bans/{player}", "/worlds/arena/bans/bob", "", 404},
	{"GET", "/worlds/{world}/sessions:export", "/worlds/arena/sessions:export", "", 404},
	{"POST", "/worlds/{world}/sessions:import", "/worlds/arena/sessions:import", `{"players":[{"player":"p1","data":{"gold":1}}]}`, 200},
	{"DELETE", "/worlds/{world}", "/worlds/lobby", "", 200},
}

func TestInternalRoutesRefuseCallsWithoutTheClusterCredential(t *testing.T) {
	t.Parallel()
	fake := apitest.NewFake()
	require.NoError(t, fake.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	e := newEnv(t, fake, withSecret, withAuth)
	adminTok := sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims("ops"), Admin: true})
	for _, c := range internalCalls {
		path := edge.InternalPrefix + c.path
		m := e.RequireError(401, edge.CodeUnauthorized, c.method, path, c.body)
		require.Contains(t, m["error"], "internal endpoint", path)
		e.RequireError(401, edge.CodeUnauthorized, c.method, path, c.body, edge.HeaderForwarded, "1")
		e.RequireError(401, edge.CodeUnauthorized, c.method, path, c.body, edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret+"x")
		e.RequireError(401, edge.CodeUnauthorized, c.method, path, c.body, edge.HeaderForwarded, "1", "Authorization", "Bearer "+adminTok)
		code, _, b := e.Do(c.method, path, c.body, edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret,
			"Authorization", "Bearer "+sign(t, jwt.SigningMethodHS256, keys.HS, claims("p1")))
		require.Equal(t, 200, code, "%s: %s", path, b)
	}
	for _, c := range internalAdminCalls {
		path := edge.InternalPrefix + c.path
		m := e.RequireError(401, edge.CodeUnauthorized, c.method, path, c.body)
		require.Contains(t, m["error"], "internal endpoint", path)
		e.RequireError(401, edge.CodeUnauthorized, c.method, path, c.body, edge.HeaderForwarded, "1")
		e.RequireError(401, edge.CodeUnauthorized, c.method, path, c.body, edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret+"x")
		// The admin's token opens the public route, never the internal one.
		e.RequireError(401, edge.CodeUnauthorized, c.method, path, c.body, edge.HeaderForwarded, "1", "Authorization", "Bearer "+adminTok)
		code, _, b := e.Do(c.method, path, c.body, edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret)
		require.Equal(t, c.code, code, "%s: %s", path, b)
	}

	// Without a secret, only calls marked as coming from a node are served.
	open := newEnv(t, apitest.NewFake())
	for _, c := range internalCalls {
		m := open.RequireError(403, edge.CodeForbidden, c.method, edge.InternalPrefix+c.path, c.body)
		require.Contains(t, m["error"], "internal endpoint")
	}
	for _, c := range internalAdminCalls {
		m := open.RequireError(403, edge.CodeForbidden, c.method, edge.InternalPrefix+c.path, c.body)
		require.Contains(t, m["error"], "internal endpoint")
	}
}

// requests returns how many requests of route pattern a node answered.
func requests(e *testEnv, pattern string, code string) float64 {
	return testutil.ToFloat64(e.srv.Metrics().Requests.WithLabelValues(pattern, code))
}

func TestNodeToNodeCallsUseTheInternalRoutesNotThePublicOnes(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	ctx := context.Background()

	code, _, b := follower.Do("POST", "/v1/worlds/arena/actions", incrBody)
	require.Equal(t, 200, code, "%s", b)
	code, _, b = follower.Do("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+actBody("p2", 1)+`]}`)
	require.Equal(t, 200, code, "%s", b)
	code, _, b = follower.Do("GET", "/v1/worlds/arena/entities/e1", "")
	require.Equal(t, 200, code, "%s", b)
	a := &fsm.Action{World: "arena", Player: "p3", Seq: 1, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: 1}}}
	_, err := follower.srv.ActOnLeader(ctx, a, json.RawMessage(actBody("p3", 1)), "")
	require.NoError(t, err)
	info, err := follower.srv.Session(ctx, fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "p3"}, "")
	require.NoError(t, err)
	require.Equal(t, "s1", info.ID)
	n, err := follower.srv.SessionAcks(ctx, []fsm.SessionAck{{World: "arena", ID: "s1", Seq: 1}})
	require.NoError(t, err)
	require.Equal(t, 1, n)

	for pattern, want := range map[string]float64{
		"POST " + edge.InternalPrefix + "/worlds/{world}/actions":          1,
		"POST " + edge.InternalPrefix + "/worlds/{world}/actions:forward":  1, // a play action (ActOnLeader)
		"POST " + edge.InternalPrefix + "/worlds/{world}/actions:batch":    1,
		"GET " + edge.InternalPrefix + "/worlds/{world}/entities/{entity}": 1,
		"POST " + edge.InternalPrefix + "/worlds/{world}/sessions/{op}":    1,
		"POST " + edge.InternalPrefix + "/sessions:acks":                   1,
		"POST /v1/worlds/{world}/actions":                                  0,
		"POST /v1/worlds/{world}/actions:batch":                            0,
		"GET /v1/worlds/{world}/entities/{entity}":                         0,
		"POST /v1/worlds/{world}/sessions/{op}":                            0,
		"POST /v1/sessions:acks":                                           0,
	} {
		require.Equal(t, want, requests(leader, pattern, "200"), pattern)
	}
	require.Equal(t, 6, leader.Fake.Forwarded)
	require.Zero(t, follower.Fake.Acts)

	// The admin and world commands, asked of the follower, run on the
	// leader through their internal routes: same status as the leader's.
	for _, c := range internalAdminCalls {
		code, h, b := follower.Do(c.method, "/v1"+c.path, c.body)
		require.Equal(t, c.code, code, "%s %s: %s", c.method, c.path, b)
		require.Equal(t, "n1", h.Get(edge.HeaderLeader), c.path)
		status := strconv.Itoa(c.code)
		require.Equal(t, float64(1), requests(leader, c.method+" "+edge.InternalPrefix+c.pattern, status), c.pattern)
		require.Zero(t, requests(leader, c.method+" /v1"+c.pattern, status), c.pattern)
	}
	require.Equal(t, 6+len(internalAdminCalls), leader.Fake.Forwarded)
	require.Equal(t, 1, leader.Fake.Transfers)
	require.Zero(t, follower.Fake.Transfers)
}

func TestRelayedAnswersAreTheLeadersBytes(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	_, _, b := leader.Do("POST", "/v1/worlds/arena/actions", incrBody)
	require.Contains(t, string(b), `"status":"applied"`)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/worlds/arena/entities/e1", ""},
		{"GET", "/v1/worlds/arena/entities/nope", ""},
		{"POST", "/v1/worlds/nowhere/actions", incrBody},
		{"POST", "/v1/worlds/arena/actions", incrBody},                                         // a repeat
		{"POST", "/v1/worlds/arena/actions", strings.Replace(incrBody, `"by":1`, `"by":2`, 1)}, // seq_reused
		{"POST", "/v1/worlds/nowhere/actions:batch", `{"actions":[` + incrBody + `]}`},         // an item's error
		{"POST", "/v1/worlds", `{"id":"arena"}`},                                               // world_exists
		{"PUT", "/v1/worlds/nowhere/rules", strictBody},
		{"POST", "/v1/worlds/arena/sessions/nope/kick", ""},
		{"DELETE", "/v1/worlds/arena/bans/bob", ""},
		{"GET", "/v1/worlds/arena/sessions:export", ""},
	} {
		lc, lh, lb := leader.Do(r.method, r.path, r.body)
		fc, fh, fb := follower.Do(r.method, r.path, r.body)
		require.Equal(t, lc, fc, "%s %s", r.method, r.path)
		require.Equal(t, string(lb), string(fb), "%s %s", r.method, r.path)
		require.Equal(t, lh.Get("Content-Type"), fh.Get("Content-Type"))
		require.Equal(t, lh.Get("Retry-After"), fh.Get("Retry-After"))
		require.Equal(t, "n1", fh.Get(edge.HeaderLeader))
	}
	leader.Fake.Set(func(f *apitest.Fake) { f.ActErr = store.ErrOverloaded })
	_, lh, lb := leader.Do("POST", "/v1/worlds/arena/actions", actBody("p9", 1))
	_, fh, fb := follower.Do("POST", "/v1/worlds/arena/actions", actBody("p9", 1))
	require.Equal(t, string(lb), string(fb))
	require.Equal(t, "1", lh.Get("Retry-After"))
	require.Equal(t, "1", fh.Get("Retry-After"))
}

func TestForwardedActionsCarryThePlayersTokenToTheLeader(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t, withAuth)
	tok := "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann"))
	noPlayer := `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
	code, _, b := follower.Do("POST", "/v1/worlds/arena/actions", noPlayer, "Authorization", tok)
	require.Equal(t, 200, code, "%s", b)
	require.Equal(t, "ann", leader.Fake.LastAction.Player, "the leader took the player from the token")
	code, _, b = follower.Do("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+noPlayer+`]}`, "Authorization", tok)
	require.Equal(t, 200, code, "%s", b)
	follower.RequireError(403, edge.CodeForbidden, "POST", "/v1/worlds/arena/actions", actBody("bob", 2), "Authorization", tok)
	follower.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+noPlayer+`]}`)
	require.Equal(t, 2, leader.Fake.Forwarded, "refused before anything was sent")
}

func TestNodeToNodeCallsWithoutAReachableLeaderAreNotLeader(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	f := apitest.NewFake()
	f.LeaderFlag.Store(false)
	e := newEnv(t, f)
	acks := []fsm.SessionAck{{World: "arena", ID: "s1", Seq: 1}}
	for _, leader := range []string{"", dead, "bad host\x7f"} {
		f.SetLeader("n9", leader)
		e.RequireError(503, edge.CodeNotLeader, "POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+incrBody+`]}`)
		e.RequireError(503, edge.CodeNotLeader, "POST", "/v1/worlds", `{"id":"lobby"}`)
		e.RequireError(503, edge.CodeNotLeader, "DELETE", "/v1/cluster/nodes/n3", "")
		_, err := e.srv.SessionAcks(context.Background(), acks)
		require.ErrorIs(t, err, store.ErrNotLeader, leader)
	}
	require.Zero(t, f.Acts)
}

func TestBanWithABadBodyIsRefusedBeforeAnythingIsSentOn(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	follower.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/bans", `{"player":"bob","x":1}`)
	require.Zero(t, leader.Fake.Forwarded)
}

// failingWriter is a client that went away: every write fails.
type failingWriter struct{ h http.Header }

func (w *failingWriter) Header() http.Header       { return w.h }
func (w *failingWriter) WriteHeader(int)           {}
func (w *failingWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }

func TestARelayedAnswerToAClientThatWentAwayIsNoErrorToAnswer(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	leader.Do("POST", "/v1/worlds/arena/actions", incrBody)
	r := httptest.NewRequest("GET", "/v1/worlds/arena/entities/e1", nil)
	w := &failingWriter{h: make(http.Header)}
	rt := edge.Route{GroupID: edge.SingleGroupID, Node: "n1", Addr: leader.TS.URL}
	require.NoError(t, follower.srv.Relay(w, r, rt, http.MethodGet, edge.InternalEntityPath("arena", "e1"), nil))
	require.Equal(t, "n1", w.h.Get(edge.HeaderLeader))
}

func TestAnInternalAnswerCutOffMidBodyIsAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		if strings.HasSuffix(r.URL.Path, "/close") {
			w.WriteHeader(http.StatusConflict)
		}
		_, _ = w.Write([]byte(`{"id":`)) // and the connection ends
	}))
	t.Cleanup(cut.Close)
	f := apitest.NewFake()
	f.LeaderFlag.Store(false)
	f.SetLeader("n9", cut.URL)
	e := newEnv(t, f)
	ctx := context.Background()
	_, err := e.srv.Session(ctx, fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann"}, "")
	require.ErrorIs(t, err, store.ErrOutcomeUnknown, "a 200 answer cut off")
	_, err = e.srv.Session(ctx, fsm.CmdSessionClose, &fsm.SessionCmd{World: "arena", ID: "s1"}, "")
	require.ErrorIs(t, err, store.ErrOutcomeUnknown, "an error answer cut off")
}

func TestAdminCommandsAreAuthorizedWhereTheAdminCalledAndRunOnTheLeader(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t, withSecret, withAuth)
	adminTok := "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims("ops"), Admin: true})
	playerTok := "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann"))

	// The follower checks the admin's credential; the leader trusts the
	// follower's cluster secret on its internal route.
	follower.RequireError(403, edge.CodeForbidden, "POST", "/v1/cluster/transfer-leadership", "", "Authorization", playerTok)
	follower.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/cluster/transfer-leadership", "")
	require.Zero(t, leader.Fake.Forwarded, "refused before anything was sent")
	for _, hdr := range [][]string{{"Authorization", adminTok}, {edge.HeaderClusterKey, testSecret}} {
		code, _, b := follower.Do("POST", "/v1/cluster/transfer-leadership", "", hdr...)
		require.Equal(t, 200, code, "%s", b)
	}
	require.Equal(t, 2, leader.Fake.Transfers)
	require.Equal(t, float64(2), requests(leader, "POST "+edge.InternalPrefix+"/cluster/transfer-leadership", "200"))

	// A follower of an older version proxies the public route, marked and
	// with the secret: the leader still serves it, and a node that does not
	// lead refuses it rather than sending it on.
	code, _, b := leader.Do("POST", "/v1/worlds", `{"id":"lobby"}`, edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret)
	require.Equal(t, 201, code, "%s", b)
	follower.RequireError(503, edge.CodeNotLeader, "POST", "/v1/worlds", `{"id":"hall"}`, edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret)
	require.Equal(t, 3, leader.Fake.Forwarded)
}

// actRouteBody is the compact act route's body for actions.
func actRouteBody(actions ...*fsm.Action) string {
	b := &fsm.Batch{}
	for _, a := range actions {
		b.Commands = append(b.Commands, fsm.Command{Kind: fsm.CmdAction, Action: a})
	}
	return string(fsm.EncodeBatch(b))
}
