package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// internalCalls lists one request per route of the node-to-node service.
var internalCalls = []struct{ method, pattern, path, body string }{
	{"POST", "/worlds/{world}/actions", "/worlds/arena/actions", incrBody},
	{"POST", "/worlds/{world}/actions:batch", "/worlds/arena/actions:batch", `{"actions":[` + incrBody + `]}`},
	{"GET", "/worlds/{world}/entities/{entity}", "/worlds/arena/entities/e1", ""},
	{"POST", "/worlds/{world}/sessions/{op}", "/worlds/arena/sessions/open", `{"id":"s1","player":"p1"}`},
	{"POST", "/sessions:acks", "/sessions:acks", `{"acks":[{"world":"arena","id":"s1","seq":1}]}`},
}

func TestInternalRoutesRefuseCallsWithoutTheClusterCredential(t *testing.T) {
	t.Parallel()
	fake := newFake()
	require.NoError(t, fake.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	e := newEnv(t, fake, withSecret, withAuth)
	adminTok := sign(t, jwt.SigningMethodHS256, keys.hs, adminClaims{RegisteredClaims: claims("ops"), Admin: true})
	for _, c := range internalCalls {
		path := InternalPrefix + c.path
		m := e.requireError(401, CodeUnauthorized, c.method, path, c.body)
		require.Contains(t, m["error"], "internal endpoint", path)
		e.requireError(401, CodeUnauthorized, c.method, path, c.body, HeaderForwarded, "1")
		e.requireError(401, CodeUnauthorized, c.method, path, c.body, HeaderForwarded, "1", HeaderClusterKey, testSecret+"x")
		e.requireError(401, CodeUnauthorized, c.method, path, c.body, HeaderForwarded, "1", "Authorization", "Bearer "+adminTok)
		code, _, b := e.do(c.method, path, c.body, HeaderForwarded, "1", HeaderClusterKey, testSecret,
			"Authorization", "Bearer "+sign(t, jwt.SigningMethodHS256, keys.hs, claims("p1")))
		require.Equal(t, 200, code, "%s: %s", path, b)
	}

	// Without a secret, only calls marked as coming from a node are served.
	open := newEnv(t, newFake())
	for _, c := range internalCalls {
		m := open.requireError(403, CodeForbidden, c.method, InternalPrefix+c.path, c.body)
		require.Contains(t, m["error"], "internal endpoint")
	}
}

// requests returns how many requests of route pattern a node answered.
func requests(e *testEnv, pattern string, code string) float64 {
	return testutil.ToFloat64(e.srv.metrics.requests.WithLabelValues(pattern, code))
}

func TestNodeToNodeCallsUseTheInternalRoutesNotThePublicOnes(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	ctx := context.Background()

	code, _, b := follower.do("POST", "/v1/worlds/arena/actions", incrBody)
	require.Equal(t, 200, code, "%s", b)
	code, _, b = follower.do("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+actBody("p2", 1)+`]}`)
	require.Equal(t, 200, code, "%s", b)
	code, _, b = follower.do("GET", "/v1/worlds/arena/entities/e1", "")
	require.Equal(t, 200, code, "%s", b)
	a := &fsm.Action{World: "arena", Player: "p3", Seq: 1, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: 1}}}
	_, err := follower.srv.actOnLeader(ctx, a, json.RawMessage(actBody("p3", 1)), "")
	require.NoError(t, err)
	info, err := follower.srv.session(ctx, fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "p3"}, "")
	require.NoError(t, err)
	require.Equal(t, "s1", info.ID)
	n, err := follower.srv.sessionAcks(ctx, []fsm.SessionAck{{World: "arena", ID: "s1", Seq: 1}})
	require.NoError(t, err)
	require.Equal(t, 1, n)

	for pattern, want := range map[string]float64{
		"POST " + InternalPrefix + "/worlds/{world}/actions":          2,
		"POST " + InternalPrefix + "/worlds/{world}/actions:batch":    1,
		"GET " + InternalPrefix + "/worlds/{world}/entities/{entity}": 1,
		"POST " + InternalPrefix + "/worlds/{world}/sessions/{op}":    1,
		"POST " + InternalPrefix + "/sessions:acks":                   1,
		"POST /v1/worlds/{world}/actions":                             0,
		"POST /v1/worlds/{world}/actions:batch":                       0,
		"GET /v1/worlds/{world}/entities/{entity}":                    0,
		"POST /v1/worlds/{world}/sessions/{op}":                       0,
		"POST /v1/sessions:acks":                                      0,
	} {
		require.Equal(t, want, requests(leader, pattern, "200"), pattern)
	}
	require.Equal(t, 6, leader.fake.forwarded)
	require.Zero(t, follower.fake.acts)
}

func TestRelayedAnswersAreTheLeadersBytes(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	_, _, b := leader.do("POST", "/v1/worlds/arena/actions", incrBody)
	require.Contains(t, string(b), `"status":"applied"`)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/worlds/arena/entities/e1", ""},
		{"GET", "/v1/worlds/arena/entities/nope", ""},
		{"POST", "/v1/worlds/nowhere/actions", incrBody},
		{"POST", "/v1/worlds/arena/actions", incrBody},                                         // a repeat
		{"POST", "/v1/worlds/arena/actions", strings.Replace(incrBody, `"by":1`, `"by":2`, 1)}, // seq_reused
		{"POST", "/v1/worlds/nowhere/actions:batch", `{"actions":[` + incrBody + `]}`},         // an item's error
	} {
		lc, lh, lb := leader.do(r.method, r.path, r.body)
		fc, fh, fb := follower.do(r.method, r.path, r.body)
		require.Equal(t, lc, fc, "%s %s", r.method, r.path)
		require.Equal(t, string(lb), string(fb), "%s %s", r.method, r.path)
		require.Equal(t, lh.Get("Content-Type"), fh.Get("Content-Type"))
		require.Equal(t, lh.Get("Retry-After"), fh.Get("Retry-After"))
		require.Equal(t, "n1", fh.Get(HeaderLeader))
	}
	leader.fake.set(func(f *fakeBackend) { f.actErr = store.ErrOverloaded })
	_, lh, lb := leader.do("POST", "/v1/worlds/arena/actions", actBody("p9", 1))
	_, fh, fb := follower.do("POST", "/v1/worlds/arena/actions", actBody("p9", 1))
	require.Equal(t, string(lb), string(fb))
	require.Equal(t, "1", lh.Get("Retry-After"))
	require.Equal(t, "1", fh.Get("Retry-After"))
}

func TestForwardedActionsCarryThePlayersTokenToTheLeader(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t, withAuth)
	tok := "Bearer " + sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann"))
	noPlayer := `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
	code, _, b := follower.do("POST", "/v1/worlds/arena/actions", noPlayer, "Authorization", tok)
	require.Equal(t, 200, code, "%s", b)
	require.Equal(t, "ann", leader.fake.lastAction.Player, "the leader took the player from the token")
	code, _, b = follower.do("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+noPlayer+`]}`, "Authorization", tok)
	require.Equal(t, 200, code, "%s", b)
	follower.requireError(403, CodeForbidden, "POST", "/v1/worlds/arena/actions", actBody("bob", 2), "Authorization", tok)
	follower.requireError(401, CodeUnauthorized, "POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+noPlayer+`]}`)
	require.Equal(t, 2, leader.fake.forwarded, "refused before anything was sent")
}

func TestNodeToNodeCallsWithoutAReachableLeaderAreNotLeader(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	f := newFake()
	f.leader.Store(false)
	e := newEnv(t, f)
	acks := []fsm.SessionAck{{World: "arena", ID: "s1", Seq: 1}}
	for _, leader := range []string{"", dead, "bad host\x7f"} {
		f.setLeader("n9", leader)
		e.requireError(503, CodeNotLeader, "POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+incrBody+`]}`)
		e.requireError(503, CodeNotLeader, "POST", "/v1/worlds", `{"id":"lobby"}`)
		e.requireError(503, CodeNotLeader, "DELETE", "/v1/cluster/nodes/n3", "")
		_, err := e.srv.sessionAcks(context.Background(), acks)
		require.ErrorIs(t, err, store.ErrNotLeader, leader)
	}
	require.Zero(t, f.acts)
}

func TestBanWithABadBodyIsRefusedBeforeAnythingIsSentOn(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	follower.requireError(400, fsm.CodeMalformed, "POST", "/v1/worlds/arena/bans", `{"player":"bob","x":1}`)
	require.Zero(t, leader.fake.forwarded)
}

// failingWriter is a client that went away: every write fails.
type failingWriter struct{ h http.Header }

func (w *failingWriter) Header() http.Header       { return w.h }
func (w *failingWriter) WriteHeader(int)           {}
func (w *failingWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }

func TestARelayedAnswerToAClientThatWentAwayIsNoErrorToAnswer(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	leader.do("POST", "/v1/worlds/arena/actions", incrBody)
	r := httptest.NewRequest("GET", "/v1/worlds/arena/entities/e1", nil)
	w := &failingWriter{h: make(http.Header)}
	rt := Route{GroupID: SingleGroupID, Node: "n1", Addr: leader.ts.URL}
	require.NoError(t, follower.srv.relay(w, r, rt, http.MethodGet, internalEntityPath("arena", "e1"), nil))
	require.Equal(t, "n1", w.h.Get(HeaderLeader))
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
	f := newFake()
	f.leader.Store(false)
	f.setLeader("n9", cut.URL)
	e := newEnv(t, f)
	ctx := context.Background()
	_, err := e.srv.session(ctx, fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann"}, "")
	require.ErrorIs(t, err, store.ErrOutcomeUnknown, "a 200 answer cut off")
	_, err = e.srv.session(ctx, fsm.CmdSessionClose, &fsm.SessionCmd{World: "arena", ID: "s1"}, "")
	require.ErrorIs(t, err, store.ErrOutcomeUnknown, "an error answer cut off")
}
