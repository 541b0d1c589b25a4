package peer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// healTaker records the orders a node took and answers questions for
// marks from marks (world@index → hash).
type healTaker struct {
	mu       sync.Mutex
	got      []string
	fail     error
	marks    map[string]uint64
	markFail error
}

func (h *healTaker) mark(group uint64, world string, index uint64) (uint64, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.markFail != nil {
		return 0, false, h.markFail
	}
	v, ok := h.marks[fmt.Sprintf("%d/%s@%d", group, world, index)]
	return v, ok, nil
}

func (h *healTaker) take(group uint64, leader string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return h.fail
	}
	h.got = append(h.got, leader+"@"+string(rune('0'+group)))
	return nil
}

func (h *healTaker) orders() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// serveHeal serves node self's heal route behind the edge's access checks.
func serveHeal(t *testing.T, self string, opt func(*edge.Config)) (*apitest.Env, *API, *healTaker) {
	t.Helper()
	cfg := apitest.Config()
	if opt != nil {
		opt(&cfg)
	}
	core := apitest.Core(t, apitest.NewFake(), &cfg)
	p := New(core)
	h := &healTaker{marks: map[string]uint64{"0/arena@7": 0xab}}
	mux := http.NewServeMux()
	p.RegisterHeal(mux, self, h.take, h.mark)
	return apitest.Serve(t, core.Handler(mux), nil, nil, nil, nil), p, h
}

const healBody = `{"node":"n3","leader":"n1"}`

func TestHealRouteNeedsTheClusterSecretAndHandsTheOrderOn(t *testing.T) {
	t.Parallel()
	e, _, h := serveHeal(t, "n3", withSecret)
	path := InternalHealPath(0)
	require.Equal(t, "/internal/v1/groups/0/checkpoints:heal", path)
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", path, healBody)
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", path, healBody, edge.HeaderForwarded, "1")
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", path, healBody, edge.HeaderForwarded, "1", edge.HeaderClusterKey, apitest.Secret+"x")
	require.Empty(t, h.orders())

	code, m := e.DoJSON("POST", path, healBody, edge.HeaderForwarded, "1", edge.HeaderClusterKey, apitest.Secret)
	require.Equal(t, http.StatusAccepted, code, "%v", m)
	require.Equal(t, true, m["accepted"])
	require.Equal(t, []string{"n1@0"}, h.orders())
}

func TestHealRouteRefusesOrdersForAnotherNodeAndBadBodies(t *testing.T) {
	t.Parallel()
	e, _, h := serveHeal(t, "n3", nil)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "POST", InternalHealPath(0), healBody)
	for path, c := range map[string]struct{ body, says string }{
		InternalHealPath(0) + "?a":                                  {`{"node":"n2","leader":"n1"}`, `names node "n2"`},
		InternalHealPath(0) + "?b":                                  {`{"node":"n3"}`, "leader must be"},
		InternalHealPath(0) + "?c":                                  {`not json`, ""},
		"/internal/v1/groups/x/checkpoints:heal":                    {healBody, "group must be"},
		"/internal/v1/groups/-1/checkpoints:heal":                   {healBody, "group must be"},
		InternalHealPath(0) + "?d":                                  {`{"node":"n3","leader":"n1","x":1}`, "x"},
		"/internal/v1/groups/1%2F2/checkpoints:heal":                {healBody, "group must be"},
		"/internal/v1/groups/99999999999999999999/checkpoints:heal": {healBody, "group must be"},
	} {
		m := e.RequireError(http.StatusBadRequest, "malformed", "POST", path, c.body, edge.HeaderForwarded, "1")
		require.Contains(t, m["error"], c.says, path)
	}
	require.Empty(t, h.orders())
	h.fail = fsm.ErrNotSupported
	e.RequireError(http.StatusUnprocessableEntity, "not_supported", "POST", InternalHealPath(2), healBody, edge.HeaderForwarded, "1")
}

// TestSendHealReachesTheNodeByItsAddress: the leader's order goes to the
// node's HTTP address from the node table, with the cluster secret.
func TestSendHealReachesTheNodeByItsAddress(t *testing.T) {
	t.Parallel()
	ne, _, h := serveHeal(t, "n3", withSecret)
	_, lp := serve(t, apitest.NewFake(), withSecret)
	ctx := context.Background()
	n3 := fsm.NodeInfo{ID: "n3", HTTPAddr: ne.TS.Listener.Addr().String()}
	require.NoError(t, lp.SendHeal(ctx, 0, n3, "n1"))
	require.Equal(t, []string{"n1@0"}, h.orders())

	require.ErrorContains(t, lp.SendHeal(ctx, 0, fsm.NodeInfo{ID: "n3"}, "n1"), "no HTTP address")
	other := n3
	other.ID = "n2" // a stale table: the address now serves another node
	err := lp.SendHeal(ctx, 0, other, "n1")
	re, ok := err.(*edge.RemoteError)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusBadRequest, re.Status)

	// A node of an older version has no route: 404.
	old := apitest.Core(t, apitest.NewFake(), nil)
	oe := apitest.Serve(t, old.Handler(http.NewServeMux()), nil, nil, nil, nil)
	err = lp.SendHeal(ctx, 0, fsm.NodeInfo{ID: "n3", HTTPAddr: oe.TS.Listener.Addr().String()}, "n1")
	re, ok = err.(*edge.RemoteError)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusNotFound, re.Status)
}

// TestSendHealNeedsTheAcceptance: a 2xx answer that does not accept the
// order is a failed heal.
func TestSendHealNeedsTheAcceptance(t *testing.T) {
	t.Parallel()
	core := apitest.Core(t, apitest.NewFake(), nil)
	mux := http.NewServeMux()
	mux.HandleFunc(InternalHealPattern, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":false}`))
	})
	e := apitest.Serve(t, core.Handler(mux), nil, nil, nil, nil)
	_, lp := serve(t, apitest.NewFake(), nil)
	err := lp.SendHeal(context.Background(), 0, fsm.NodeInfo{ID: "n3", HTTPAddr: e.TS.Listener.Addr().String()}, "n1")
	require.ErrorContains(t, err, "did not accept")
}

func TestMarkRouteNeedsTheSecretAndAnswersTheNodesMark(t *testing.T) {
	t.Parallel()
	e, _, h := serveHeal(t, "n3", withSecret)
	path := InternalMarkPath(0, "arena", 7)
	require.Equal(t, "/internal/v1/groups/0/worlds/arena/checkpoints/7", path)
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "GET", path, "")
	node := []string{edge.HeaderForwarded, "1", edge.HeaderClusterKey, apitest.Secret}
	code, m := e.DoJSON("GET", path, "", node...)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, map[string]any{"world": "arena", "index": float64(7), "hash": "00000000000000ab", "known": true}, m)
	code, m = e.DoJSON("GET", InternalMarkPath(0, "arena", 8), "", node...)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, map[string]any{"world": "arena", "index": float64(8), "known": false}, m)
	for p, says := range map[string]string{
		"/internal/v1/groups/x/worlds/arena/checkpoints/7":  "group must be",
		"/internal/v1/groups/0/worlds/arena/checkpoints/-7": "index must be",
		"/internal/v1/groups/0/worlds/%FF/checkpoints/7":    "world must be",
	} {
		m := e.RequireError(http.StatusBadRequest, "malformed", "GET", p, "", node...)
		require.Contains(t, m["error"], says, p)
	}
	h.mu.Lock()
	h.markFail = fsm.ErrNotSupported
	h.mu.Unlock()
	e.RequireError(http.StatusUnprocessableEntity, "not_supported", "GET", InternalMarkPath(3, "arena", 7), "", node...)
}

func TestAskMarkReachesTheNodeByItsAddress(t *testing.T) {
	t.Parallel()
	ne, _, h := serveHeal(t, "n3", withSecret)
	_, lp := serve(t, apitest.NewFake(), withSecret)
	ctx := context.Background()
	n3 := fsm.NodeInfo{ID: "n3", HTTPAddr: ne.TS.Listener.Addr().String()}
	got, known, err := lp.AskMark(ctx, 0, n3, "arena", 7)
	require.NoError(t, err)
	require.True(t, known)
	require.Equal(t, uint64(0xab), got)
	_, known, err = lp.AskMark(ctx, 0, n3, "arena", 8)
	require.NoError(t, err)
	require.False(t, known)
	_, _, err = lp.AskMark(ctx, 0, fsm.NodeInfo{ID: "n3"}, "arena", 7)
	require.ErrorContains(t, err, "no HTTP address")
	h.mu.Lock()
	h.markFail = errors.New("boom")
	h.mu.Unlock()
	_, _, err = lp.AskMark(ctx, 0, n3, "arena", 7)
	re, ok := err.(*edge.RemoteError)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusInternalServerError, re.Status)

	// An answer whose hash does not parse is an error, not a mark.
	core := apitest.Core(t, apitest.NewFake(), nil)
	mux := http.NewServeMux()
	mux.HandleFunc(InternalMarkPattern, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"world":"arena","index":7,"hash":"zz","known":true}`))
	})
	be := apitest.Serve(t, core.Handler(mux), nil, nil, nil, nil)
	_, _, err = lp.AskMark(ctx, 0, fsm.NodeInfo{ID: "n9", HTTPAddr: be.TS.Listener.Addr().String()}, "arena", 7)
	require.ErrorContains(t, err, "hash must be")
}
