package play

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// movingFake is a backend over several groups (as shard.Backend): it
// runs the groups in runs.
type movingFake struct {
	*apitest.Fake
	runs map[uint64]bool
}

func (f movingFake) RunsGroup(g uint64) bool { return f.runs[g] }

// movingRouter routes every world to the fake, as group gid.
type movingRouter struct {
	f   *apitest.Fake
	gid atomic.Value // string
}

func (r *movingRouter) Route(string, edge.Kind) (edge.Route, error) {
	g := r.gid.Load().(string)
	if g == "" {
		return edge.Route{}, errors.New("no route")
	}
	return edge.Route{GroupID: g, Group: r.f}, nil
}

// movingService is a play service over a movingFake that runs groups
// runs, routed by a movingRouter at group "1".
func movingService(t *testing.T, runs ...uint64) (*Service, movingFake, *movingRouter) {
	t.Helper()
	f := movingFake{Fake: apitest.NewFake(), runs: map[uint64]bool{}}
	for _, g := range runs {
		f.runs[g] = true
	}
	r := &movingRouter{f: f.Fake}
	r.gid.Store("1")
	cfg := testConfig()
	core, err := edge.NewCore(cfg.Config, f, r, prometheus.NewRegistry())
	require.NoError(t, err)
	return &Service{Core: core, cfg: cfg.Play, b: f, log: cfg.Logger, vis: edge.NewVisibility(f)}, f, r
}

func TestWorldMovedKnowsTheRefusalsOfThisNodeAndOfTheLeader(t *testing.T) {
	fence := fsm.Fence{World: "arena", Shard: 7, Seq: 3}
	for _, tc := range []struct {
		err          error
		named, moved bool
	}{
		{&fsm.MovedError{Fence: fence}, true, true},
		{fmt.Errorf("act: %w", &fsm.MovedError{Fence: fence}), true, true},
		{&edge.RemoteError{Status: 421, Code: fsm.CodeWorldMoved, Msg: "moved"}, false, true},
		{fmt.Errorf("x: %w", fsm.ErrWorldMoved), false, true},
		{&edge.RemoteError{Status: 503, Code: edge.CodeNotLeader}, false, false},
		{errors.New("boom"), false, false},
		{nil, false, false},
	} {
		f, named, moved := worldMoved(tc.err)
		require.Equal(t, tc.moved, moved, "%v", tc.err)
		require.Equal(t, tc.named, named, "%v", tc.err)
		if named {
			require.Equal(t, fence, f)
		}
	}
}

// The watch keeps a connection whose world moved to a group this node
// runs (its feed follows the move there), also while only the fenced
// copy is readable (the new home's replica imports it next), and ends
// one whose world moved elsewhere with world_moved, as before.
func TestWatchKeepsAConnectionWhoseWorldMovesToAGroupThisNodeRuns(t *testing.T) {
	s, f, _ := movingService(t, 7)
	fenced := func(shard uint64) {
		m := map[string]fsm.Fence{"arena": {World: "arena", Shard: shard, Seq: 3}}
		s.fenced.Store(&m)
	}
	c := &playConn{s: s, world: "arena", session: "s1", epoch: 1, current: true}
	f.Set(func(f *apitest.Fake) {
		f.SessionMap = map[string]fsm.SessionInfo{"s1": {World: "arena", ID: "s1", Epoch: 1}}
	})
	fenced(7)
	require.NoError(t, c.watch(), "moved to a group this node runs: it goes on")
	fenced(9)
	require.ErrorIs(t, c.watch(), fsm.ErrWorldMoved, "moved elsewhere: world_moved")

	// The map names the new home, whose replica here has not imported
	// the world yet: its session is not readable, its fenced copy is.
	s.fenced.Store(nil)
	f.Set(func(f *apitest.Fake) {
		f.SessionMap = nil
		f.Held = map[string]fsm.WorldInfo{"arena": {ID: "arena", Moved: &fsm.Fence{World: "arena", Shard: 7, Seq: 3}}}
	})
	require.NoError(t, c.watch(), "in transit to a group this node runs")
	f.Set(func(f *apitest.Fake) {
		f.Held["arena"] = fsm.WorldInfo{ID: "arena", Moved: &fsm.Fence{World: "arena", Shard: 9, Seq: 3}}
	})
	var moved *fsm.MovedError
	require.ErrorAs(t, c.watch(), &moved)
	require.Equal(t, uint64(9), moved.Shard)
	f.Set(func(f *apitest.Fake) { f.Held = nil })
	require.ErrorIs(t, c.watch(), edge.ErrSessionReplaced, "no copy at all: the session ended")
}

// An action refused world_moved while this node follows the world's move
// is sent again, same seq, once the node routes the world to its new
// home; where the node does not follow, or the request's time runs out,
// the refusal is the answer.
func TestAnActionRefusedWorldMovedIsSentAgainAtTheNewHome(t *testing.T) {
	s, f, r := movingService(t, 7)
	require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	fence := fsm.Fence{World: "arena", Shard: 7, Seq: 0}
	var calls atomic.Int32
	refuse := func(err error) {
		calls.Store(0)
		r.gid.Store("1")
		f.Set(func(f *apitest.Fake) {
			f.ActHook = func(_ context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
				if calls.Add(1) == 1 {
					r.gid.Store("7") // the move is published meanwhile
					return nil, false, err
				}
				return &fsm.Event{World: a.World, Seq: 1, Player: a.Player, ClientSeq: a.Seq}, false, nil
			}
		})
	}
	c := &playConn{s: s, world: "arena"}
	a := &fsm.Action{World: "arena", Player: "ann", Seq: 1, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	refuse(&fsm.MovedError{Fence: fence})
	ev, err := c.actOnLeader(ctx, a, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), ev.ClientSeq)
	require.Equal(t, int32(2), calls.Load())

	// The leader's refusal does not name the fence: this node's copy does.
	refuse(&edge.RemoteError{Status: 421, Code: fsm.CodeWorldMoved})
	f.Set(func(f *apitest.Fake) { f.Held = map[string]fsm.WorldInfo{"arena": {ID: "arena", Moved: &fence}} })
	_, err = c.actOnLeader(ctx, a, nil)
	require.NoError(t, err)
	require.Equal(t, int32(2), calls.Load())

	// Nor does this node's copy, by the time it is read: as
	// shard.Backend.HeldWorld, it is the new home's live one, the map
	// routing the world there (imported on this node's replica of 7).
	liveAt := func(gid string) func(error) (*fsm.Event, bool, error) {
		return func(err error) (*fsm.Event, bool, error) {
			r.gid.Store(gid)
			f.Held = map[string]fsm.WorldInfo{"arena": {ID: "arena"}} // under the hook: f.Mu is not held
			return nil, false, err
		}
	}
	unnamed := func(gid string) {
		calls.Store(0)
		r.gid.Store("1")
		f.Set(func(f *apitest.Fake) {
			f.Held = map[string]fsm.WorldInfo{"arena": {ID: "arena", Moved: &fence}}
			f.ActHook = func(_ context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
				if calls.Add(1) == 1 {
					return liveAt(gid)(&edge.RemoteError{Status: 421, Code: fsm.CodeWorldMoved})
				}
				return &fsm.Event{World: a.World, Seq: 1, Player: a.Player, ClientSeq: a.Seq}, false, nil
			}
		})
	}
	unnamed("7")
	_, err = c.actOnLeader(ctx, a, nil)
	require.NoError(t, err, "routed to another group this node runs: sent again")
	require.Equal(t, int32(2), calls.Load())
	for _, gid := range []string{"1", "9"} { // still the refusing group; a group this node does not run
		unnamed(gid)
		short, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = c.actOnLeader(short, a, nil)
		scancel()
		_, _, moved := worldMoved(err)
		require.True(t, moved, "routed to %s: %v", gid, err)
		require.Equal(t, int32(1), calls.Load(), "routed to %s: not sent again", gid)
	}

	r.gid.Store("") // no route: no new home
	require.Empty(t, s.routeOf("arena"))
	require.False(t, s.movedOn("arena", "1"))

	// Moved to a group this node does not run: the refusal, at once.
	refuse(&fsm.MovedError{Fence: fsm.Fence{World: "arena", Shard: 9}})
	_, err = c.actOnLeader(ctx, a, nil)
	require.ErrorIs(t, err, fsm.ErrWorldMoved)
	require.Equal(t, int32(1), calls.Load())

	// Never routed there within the request's time: the refusal.
	refuse(&fsm.MovedError{Fence: fence})
	f.Set(func(f *apitest.Fake) {
		f.ActHook = func(context.Context, *fsm.Action) (*fsm.Event, bool, error) {
			calls.Add(1)
			return nil, false, &fsm.MovedError{Fence: fence}
		}
	})
	short, scancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer scancel()
	_, err = c.actOnLeader(short, a, nil)
	require.ErrorIs(t, err, fsm.ErrWorldMoved)
}

// A backend over one group follows no move: it cannot say which groups
// it runs, and its fenced copy is the world itself.
func TestABackendOverOneGroupFollowsNoMove(t *testing.T) {
	s := bareServer(nil)
	require.False(t, s.follows(fsm.Fence{World: "arena", Shard: 0}))
	_, ok := s.fenceOf("arena")
	require.False(t, ok)
	require.NoError(t, s.b.(*apitest.Fake).CreateWorld(context.Background(), "arena", fsm.Rules{}))
	_, ok = s.fenceOf("arena")
	require.False(t, ok, "not fenced")

	st := apitest.StartStore(t) // no HeldWorlds: its own copy
	require.NoError(t, st.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	_, err := st.MoveWorld(context.Background(), "arena", 7, 0)
	require.NoError(t, err)
	fence, ok := (&Service{b: st}).fenceOf("arena")
	require.True(t, ok)
	require.Equal(t, fsm.Fence{World: "arena", Shard: 7}, fence)
}
