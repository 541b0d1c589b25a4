package peer

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// reportingFake is the fake group that takes mismatch reports: it records
// them, and steps down on the second reporter, as a 3-voter leader would.
type reportingFake struct {
	*apitest.Fake
	mu   sync.Mutex
	got  []store.CheckpointMismatch
	fail error
}

func (f *reportingFake) ReportMismatch(m store.CheckpointMismatch) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return false, f.fail
	}
	f.got = append(f.got, m)
	return len(f.got) >= 2, nil
}

func (f *reportingFake) reports() []store.CheckpointMismatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.CheckpointMismatch(nil), f.got...)
}

// serve serves the node-to-node routes of a core over b (the peer surface
// only; the handlers it shares with the public surfaces are not needed
// here) with cfg adjusted by opt.
func serve(t *testing.T, b apitest.Node, opt func(*edge.Config)) (*apitest.Env, *API) {
	t.Helper()
	cfg := apitest.Config()
	if opt != nil {
		opt(&cfg)
	}
	core := apitest.Core(t, b, &cfg)
	p := New(core)
	mux := http.NewServeMux()
	p.Register(mux, Handlers{})
	return apitest.Serve(t, core.Handler(mux), nil, nil, nil, nil), p
}

func withSecret(c *edge.Config) { c.ClusterSecret = []byte(apitest.Secret) }

var theMismatch = store.CheckpointMismatch{Node: "n2", World: "arena", Index: 7, Leader: "n1", LeaderHash: 0xab, Local: 0xcd}

const mismatchBody = `{"node":"n2","world":"arena","index":7,"leader":"n1","leader_hash":"00000000000000ab","hash":"cd"}`

func TestMismatchRouteNeedsTheClusterSecretAndReachesTheLeadersStore(t *testing.T) {
	t.Parallel()
	f := &reportingFake{Fake: apitest.NewFake()}
	e, _ := serve(t, f, withSecret)
	path := InternalMismatchPath("arena")
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", path, mismatchBody)
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", path, mismatchBody, edge.HeaderForwarded, "1")
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", path, mismatchBody, edge.HeaderForwarded, "1", edge.HeaderClusterKey, apitest.Secret+"x")
	e.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "POST", path, mismatchBody, append([]string{edge.HeaderForwarded, "1"}, apitest.AdminHeader(t)...)...)
	require.Empty(t, f.reports())

	node := []string{edge.HeaderForwarded, "1", edge.HeaderClusterKey, apitest.Secret}
	code, m := e.DoJSON("POST", path, mismatchBody, node...)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, false, m["stepped_down"])
	require.Equal(t, []store.CheckpointMismatch{theMismatch}, f.reports())
	code, m = e.DoJSON("POST", path, `{"node":"n3","index":7,"leader":"n1","leader_hash":"ab","hash":"cd"}`, node...)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, true, m["stepped_down"], "the world comes from the path")
}

func TestMismatchRouteWithoutASecretServesNodesOnly(t *testing.T) {
	t.Parallel()
	f := &reportingFake{Fake: apitest.NewFake()}
	e, _ := serve(t, f, nil)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "POST", InternalMismatchPath("arena"), mismatchBody)
	code, _ := e.DoJSON("POST", InternalMismatchPath("arena"), mismatchBody, edge.HeaderForwarded, "1")
	require.Equal(t, http.StatusOK, code)
}

func TestMismatchRouteRefusesBadBodiesWithAClearError(t *testing.T) {
	t.Parallel()
	f := &reportingFake{Fake: apitest.NewFake()}
	e, _ := serve(t, f, nil)
	for body, says := range map[string]string{
		`not json`: "",
		`{"node":"n2","world":"arena","index":7,"leader":"n1","leader_hash":"ab","hash":"cd","extra":1}`:      "extra",
		`{"world":"arena","index":7,"leader":"n1","leader_hash":"ab","hash":"cd"}`:                            "node must be",
		`{"node":"n2","world":"arena","index":7,"leader_hash":"ab","hash":"cd"}`:                              "leader must be",
		`{"node":"n2","world":"lobby","index":7,"leader":"n1","leader_hash":"ab","hash":"cd"}`:                `world "lobby" in the body`,
		`{"node":"n2","world":"arena","leader":"n1","leader_hash":"ab","hash":"cd"}`:                          "index must be",
		`{"node":"n2","world":"arena","index":7,"leader":"n1","hash":"cd"}`:                                   "leader_hash must be",
		`{"node":"n2","world":"arena","index":7,"leader":"n1","leader_hash":"xyz","hash":"cd"}`:               "leader_hash must be",
		`{"node":"n2","world":"arena","index":7,"leader":"n1","leader_hash":"ab","hash":"00000000000000001"}`: "hash must be",
		`{"node":"n2","world":"arena","index":-1,"leader":"n1","leader_hash":"ab","hash":"cd"}`:               "",
	} {
		m := e.RequireError(http.StatusBadRequest, "malformed", "POST", InternalMismatchPath("arena"), body, edge.HeaderForwarded, "1")
		require.Contains(t, m["error"], says, body)
	}
	require.Empty(t, f.reports())
}

func TestMismatchRouteOnANodeThatDoesNotLeadIsNotLeader(t *testing.T) {
	t.Parallel()
	f := &reportingFake{Fake: apitest.NewFake()}
	f.LeaderFlag.Store(false)
	f.SetLeader("n9", "127.0.0.1:1")
	e, _ := serve(t, f, nil)
	e.RequireError(http.StatusServiceUnavailable, edge.CodeNotLeader, "POST", InternalMismatchPath("arena"), mismatchBody, edge.HeaderForwarded, "1")

	f.LeaderFlag.Store(true)
	f.fail = store.ErrNotLeader // it lost leadership meanwhile
	e.RequireError(http.StatusServiceUnavailable, edge.CodeNotLeader, "POST", InternalMismatchPath("arena"), mismatchBody, edge.HeaderForwarded, "1")
	require.Empty(t, f.reports())
}

func TestMismatchRouteOverAGroupThatTakesNoReportsIsNotSupported(t *testing.T) {
	t.Parallel()
	e, _ := serve(t, struct{ apitest.Node }{apitest.NewFake()}, nil) // hides its ReportMismatch
	e.RequireError(http.StatusUnprocessableEntity, "not_supported", "POST", InternalMismatchPath("arena"), mismatchBody, edge.HeaderForwarded, "1")
}

// TestSendMismatchReachesTheLeaderOrRunsLocally: a follower's report goes
// to the leader by the node-to-node call; a leader's own report runs on
// its group.
func TestSendMismatchReachesTheLeaderOrRunsLocally(t *testing.T) {
	t.Parallel()
	leader := &reportingFake{Fake: apitest.NewFake()}
	le, lp := serve(t, leader, withSecret)
	follower := &reportingFake{Fake: apitest.NewFake()}
	follower.LeaderFlag.Store(false)
	_, fp := serve(t, follower, withSecret)
	ctx := context.Background()

	_, err := fp.SendMismatch(ctx, theMismatch)
	require.ErrorIs(t, err, store.ErrNotLeader, "no known leader")

	follower.SetLeader("n1", le.TS.Listener.Addr().String())
	down, err := fp.SendMismatch(ctx, theMismatch)
	require.NoError(t, err)
	require.False(t, down)
	require.Equal(t, []store.CheckpointMismatch{theMismatch}, leader.reports())
	require.Empty(t, follower.reports())

	down, err = lp.SendMismatch(ctx, theMismatch)
	require.NoError(t, err)
	require.True(t, down)
}

// TestSendMismatchToALeaderWithoutTheRouteIsA404: an older leader's mux
// has no route; its JSON 404 comes back as a *edge.RemoteError.
func TestSendMismatchToALeaderWithoutTheRouteIsA404(t *testing.T) {
	t.Parallel()
	old := apitest.Core(t, apitest.NewFake(), nil)
	oe := apitest.Serve(t, old.Handler(http.NewServeMux()), nil, nil, nil, nil)
	follower := &reportingFake{Fake: apitest.NewFake()}
	follower.LeaderFlag.Store(false)
	follower.SetLeader("n1", oe.TS.Listener.Addr().String())
	_, fp := serve(t, follower, nil)
	_, err := fp.SendMismatch(context.Background(), theMismatch)
	re, ok := err.(*edge.RemoteError)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusNotFound, re.Status)
}

func TestMismatchBodyRoundTrips(t *testing.T) {
	t.Parallel()
	got, err := DecodeMismatch("arena", EncodeMismatch(theMismatch))
	require.NoError(t, err)
	require.Equal(t, theMismatch, got)
	require.Equal(t, wire.Hash("00000000000000cd"), EncodeMismatch(theMismatch).Hash)
}
