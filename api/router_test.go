package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestSingleGroupRouterAnswersLocalWhenLeaderRemoteWhenFollowerNotLeaderWhenUnknown(t *testing.T) {
	t.Parallel()
	f := apitest.NewFake()
	r := edge.NewSingleGroupRouter(f)
	for _, k := range []edge.Kind{edge.KindWrite, edge.KindRead, edge.KindSession} {
		rt, err := r.Route("arena", k)
		require.NoError(t, err)
		require.True(t, rt.Local())
		require.Same(t, f, rt.Group.(*apitest.Fake))
		require.Equal(t, edge.SingleGroupID, rt.GroupID)
	}

	f.LeaderFlag.Store(false)
	f.SetLeader("n2", "10.0.0.2:8080")
	rt, err := r.Route("arena", edge.KindWrite)
	require.NoError(t, err)
	require.False(t, rt.Local())
	require.Equal(t, edge.Route{GroupID: edge.SingleGroupID, Node: "n2", Addr: "10.0.0.2:8080"}, rt)
	other, err := r.Route("lobby", edge.KindRead)
	require.NoError(t, err)
	require.Equal(t, rt, other, "one group holds every world")

	for _, leader := range [][2]string{{"", ""}, {"n2", ""}} { // none, or one without an address
		f.SetLeader(leader[0], leader[1])
		_, err = r.Route("arena", edge.KindSession)
		require.ErrorIs(t, err, store.ErrNotLeader)
		status, code := edge.Classify(err, true)
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, edge.CodeNotLeader, code)
	}
}

// routedEnv is a Server over a fake whose commands go where tr says.
func routedEnv(t *testing.T, tr *apitest.TableRouter, opts ...func(*Config)) (*Server, *apitest.Fake) {
	t.Helper()
	cfg := testConfig()
	for _, o := range opts {
		o(&cfg)
	}
	f := apitest.NewFake()
	s, err := New(cfg, f, tr, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s, f
}

func forwards(s *Server, result string) float64 {
	return testutil.ToFloat64(s.Metrics().Forwards.WithLabelValues(result))
}

func TestRouteRetriesOnceWhereTheRouterNowSaysAndRefusesToHopTwice(t *testing.T) {
	t.Parallel()
	g := apitest.NewFake()
	tr := &apitest.TableRouter{Routes: map[string]edge.Route{"arena": {GroupID: "g1", Group: g}}}
	s, _ := routedEnv(t, tr)
	remote := func(edge.Route) error { return errors.New("sent on") }

	// Local success and local errors other than not_leader: no second look.
	calls := 0
	err := s.RouteCall("arena", edge.KindWrite, edge.NoHop, func(got edge.Group) error {
		calls++
		require.Same(t, g, got.(*apitest.Fake))
		return nil
	}, remote)
	require.NoError(t, err)
	err = s.RouteCall("arena", edge.KindWrite, edge.NoHop, func(edge.Group) error { return fsm.ErrSeqReused }, remote)
	require.ErrorIs(t, err, fsm.ErrSeqReused)
	require.Equal(t, 1, calls)

	// Not the leader any more, and the router names the new one: sent on.
	deposed := func(edge.Group) error {
		tr.Set("arena", edge.Route{GroupID: "g1", Node: "n2", Addr: "h:2"})
		return store.ErrNotLeader
	}
	var sentTo edge.Route
	err = s.RouteCall("arena", edge.KindWrite, edge.NoHop, deposed, func(rt edge.Route) error { sentTo = rt; return nil })
	require.NoError(t, err)
	require.Equal(t, "n2", sentTo.Node)

	// A hop (the command came from another node) is refused, never sent on.
	tr.Set("arena", edge.Route{GroupID: "g1", Group: g})
	err = s.RouteCall("arena", edge.KindWrite, edge.Hop{Forwarded: true}, deposed, remote)
	require.ErrorIs(t, err, store.ErrNotLeader)
	require.ErrorContains(t, err, "forwarded request reached a non-leader")
	require.Equal(t, float64(1), forwards(s, "loop"))

	// Still the leader (not yet ready): the group's own error stays.
	tr.Set("arena", edge.Route{GroupID: "g1", Group: g})
	notReady := fmt.Errorf("%w: not ready", store.ErrNotLeader)
	err = s.RouteCall("arena", edge.KindWrite, edge.NoHop, func(edge.Group) error { return notReady }, remote)
	require.Same(t, notReady, err)

	// Deposed and no leader known now: not_leader, nothing sent.
	err = s.RouteCall("arena", edge.KindWrite, edge.NoHop, func(edge.Group) error {
		tr.Delete("arena")
		return store.ErrNotLeader
	}, remote)
	require.ErrorIs(t, err, store.ErrNotLeader)
	require.ErrorContains(t, err, "no known leader of arena")
	require.Equal(t, float64(1), forwards(s, "no_leader"))

	// The router's other errors are the answer.
	tr.Errs = map[string]error{"moved": fmt.Errorf("%w: world moved", fsm.ErrNotFound)}
	err = s.RouteCall("moved", edge.KindRead, edge.NoHop, func(edge.Group) error { return nil }, remote)
	require.ErrorIs(t, err, fsm.ErrNotFound)
	require.Equal(t, float64(1), forwards(s, "no_leader"))
}

func TestImportThatFailsAfterItsFirstPlayerIsAnsweredNotSentOn(t *testing.T) {
	t.Parallel()
	leader, _ := newPair(t)
	f := apitest.NewFake()
	require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	f.SetLeader("n1", leader.TS.URL)
	var calls atomic.Int32
	f.SessHook = func() error {
		if calls.Add(1) == 1 {
			return nil
		}
		f.LeaderFlag.Store(false) // deposed after the first player
		return store.ErrNotLeader
	}
	e := newEnv(t, f)
	file := `{"players":[{"player":"ann","data":{"gold":1}},{"player":"bob","data":{"gold":2}}]}`
	m := e.RequireError(503, edge.CodeNotLeader, "POST", "/v1/worlds/arena/sessions:import", file)
	require.Contains(t, m["error"], "player bob (1 imported before it)")
	require.Zero(t, leader.Fake.Forwarded, "a partial import is not sent on")

	// Failing on the first player, it is sent on to the new leader.
	f.LeaderFlag.Store(true)
	calls.Store(1)
	code, m := e.DoJSON("POST", "/v1/worlds/arena/sessions:import", file)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, 1, leader.Fake.Forwarded)
	require.Equal(t, float64(2), m["imported"])
}
