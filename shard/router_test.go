package shard

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// shardCluster is n nodes in one process, each a Manager over its own Mux
// running the shards the map makes it a voter of, and a Router.
type shardCluster struct {
	t       testing.TB
	ids     []string
	smap    *Map
	mgrs    map[string]*Manager
	routers map[string]*Router
	regs    map[string]*prometheus.Registry // each node's groups' metrics
}

func newShardCluster(t testing.TB, n int, smap Map) *shardCluster {
	t.Helper()
	return newShardClusterWith(t, n, smap, nil)
}

// newShardClusterWith is newShardCluster with tweak applied to every
// group's store config.
func newShardClusterWith(t testing.TB, n int, smap Map, tweak func(*store.Config)) *shardCluster {
	t.Helper()
	c := &shardCluster{t: t, mgrs: map[string]*Manager{}, routers: map[string]*Router{}, regs: map[string]*prometheus.Registry{}}
	muxes := map[string]*Mux{}
	smap.Nodes = map[string]MapNode{}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		c.ids = append(c.ids, id)
		muxes[id] = groupMux(t)
		smap.Nodes[id] = MapNode{Raft: muxes[id].Addr().String(), HTTP: "http-" + id + ":80"}
	}
	require.NoError(t, smap.Validate())
	c.smap = &smap
	for _, id := range c.ids {
		cfg := testStoreConfig(id)
		if tweak != nil {
			tweak(&cfg)
		}
		c.regs[id] = prometheus.NewRegistry()
		m, err := NewManager(ManagerConfig{DataDir: t.TempDir(), Store: cfg, Membership: smap.Membership}, muxes[id], c.regs[id])
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		for _, g := range smap.ShardsOf(id) {
			voters, err := smap.Voters(g)
			require.NoError(t, err)
			_, err = m.Open(g, GroupOptions{Bootstrap: true, Voters: voters})
			require.NoError(t, err)
		}
		c.mgrs[id] = m
		c.routers[id] = NewRouter(m, c.smap)
	}
	return c
}

// leader waits until some node's router places world on a Store it leads.
func (c *shardCluster) leader(world string) (string, *store.Store) {
	c.t.Helper()
	var id string
	var st *store.Store
	require.Eventually(c.t, func() bool {
		for _, n := range c.ids {
			if loc, err := c.routers[n].Locate(world); err == nil && loc.Store != nil {
				id, st = n, loc.Store
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no leader for world %q", world)
	return id, st
}

// createWorld creates world on the leader the routers name at each
// attempt, so an election under load between attempts does not stall it.
func (c *shardCluster) createWorld(world string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		for _, n := range c.ids {
			loc, err := c.routers[n].Locate(world)
			if err != nil || loc.Store == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = loc.Store.CreateWorld(ctx, world, fsm.Rules{})
			cancel()
			return err == nil || errors.Is(err, fsm.ErrWorldExists)
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "create world %s", world)
}

// act runs world's next action on the leader its routers name, retrying
// while leadership settles, and returns the event.
func (c *shardCluster) act(world string, seq uint64) *fsm.Event {
	c.t.Helper()
	var ev *fsm.Event
	require.Eventually(c.t, func() bool {
		_, st := c.leader(world)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		ev, _, err = st.Act(ctx, incr(world, "p", seq, "e"))
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(c.t, fsm.StatusApplied, ev.Status)
	return ev
}

// replicas returns every running Store of group g.
func (c *shardCluster) replicas(g uint64) []*store.Store {
	var out []*store.Store
	for _, id := range c.ids {
		if st, ok := c.mgrs[id].Group(g); ok {
			out = append(out, st)
		}
	}
	return out
}

// Two shards on three nodes: each world lives on its shard's group only,
// every node's router agrees where a world's commands go, and one shard
// losing its quorum does not stop the other.
func TestTwoShardsOnThreeNodesProgressIndependently(t *testing.T) {
	all := []string{"n1", "n2", "n3"}
	c := newShardCluster(t, 3, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: all}, {ID: 2, Voters: all}},
		Worlds:     map[string]uint64{"wa": 1, "wb": 2},
	})
	for _, g := range []uint64{1, 2} {
		require.Len(t, c.replicas(g), 3)
	}
	c.createWorld("wa")
	c.createWorld("wb")
	var evA, evB *fsm.Event
	for seq := uint64(1); seq <= 5; seq++ {
		evA = c.act("wa", seq)
		evB = c.act("wb", seq)
	}
	requireSameHash(t, c.replicas(1), "wa", evA.Seq)
	requireSameHash(t, c.replicas(2), "wb", evB.Seq)
	for _, st := range c.replicas(1) {
		_, err := st.Hash("wb", evB.Seq)
		require.Error(t, err, "shard 1 does not hold wb")
	}

	// Every other node's router names the leader: its id and HTTP address.
	leaderID, _ := c.leader("wb")
	for _, id := range c.ids {
		if id == leaderID {
			continue
		}
		require.Eventually(t, func() bool {
			loc, err := c.routers[id].Locate("wb")
			return err == nil && loc.Store == nil && loc.Group == 2 && loc.Node == leaderID && loc.Addr == "http-"+leaderID+":80"
		}, 10*time.Second, 5*time.Millisecond, "node %s routes wb to %s", id, leaderID)
	}
	// World "" is the membership group.
	require.Eventually(t, func() bool {
		loc, err := c.routers["n1"].Locate("")
		return err == nil && loc.Group == 1
	}, 10*time.Second, 5*time.Millisecond)

	// Shard 2 loses its quorum: two of its three replicas stop (their
	// nodes and shard 1's replicas on them go on).
	ctx := context.Background()
	stopped := []string{"n1", "n2"}
	for _, id := range stopped {
		require.NoError(t, c.mgrs[id].CloseGroup(ctx, 2))
		_, err := c.routers[id].Locate("wb")
		require.ErrorIs(t, err, store.ErrNotLeader)
		require.ErrorIs(t, err, ErrUnknownGroup)
	}
	lone, ok := c.mgrs["n3"].Group(2)
	require.True(t, ok)
	require.Eventually(t, func() bool { return !lone.IsLeader() }, 10*time.Second, 5*time.Millisecond,
		"a replica without a quorum does not stay leader")
	require.Eventually(t, func() bool {
		_, err := c.routers["n3"].Locate("wb")
		return errors.Is(err, store.ErrNotLeader) && !errors.Is(err, ErrUnknownGroup)
	}, 10*time.Second, 5*time.Millisecond, "no known leader of shard 2")
	actCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, _, err := lone.Act(actCtx, incr("wb", "p", 6, "e"))
	require.Error(t, err, "shard 2 has no quorum")

	for seq := uint64(6); seq <= 10; seq++ {
		ev := c.act("wa", seq)
		require.Equal(t, evA.Seq+seq-5, ev.Seq, "shard 1 goes on")
	}
	requireSameHash(t, c.replicas(1), "wa", evA.Seq+5)
}

// With a static map (no leader hints) a node that runs no replica of a
// world's shard cannot know its leader: it answers not_leader, never a
// guess.
func TestRouterOnANodeWithoutTheShard(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Shards: []MapShard{{ID: 0, Voters: []string{"n1"}}, {ID: 5, Voters: []string{"n2"}}},
		Worlds: map[string]uint64{"here": 0, "there": 5},
	})
	_, st := c.leader("here")
	got, ok := c.mgrs["n1"].Group(0)
	require.True(t, ok)
	require.Same(t, got, st)
	_, err := c.routers["n1"].Locate("there")
	require.ErrorIs(t, err, store.ErrNotLeader)
	require.ErrorIs(t, err, ErrUnknownGroup)
	require.Same(t, c.smap, c.routers["n1"].Map())

	// By group, as a move's import asks: the same answers.
	_, err = c.routers["n1"].LocateGroup(5)
	require.ErrorIs(t, err, ErrUnknownGroup)
	require.Eventually(t, func() bool {
		loc, err := c.routers["n2"].LocateGroup(5)
		return err == nil && loc.Group == 5 && loc.Store != nil
	}, 10*time.Second, 5*time.Millisecond, "n2 leads group 5")
	for world, want := range map[string]uint64{"here": 0, "there": 5} {
		got, err := c.routers["n1"].ShardOf(world)
		require.NoError(t, err)
		require.Equal(t, want, got, world)
	}
}

// A world this node's map does not place by name goes to the shard a
// forwarding node named (its map placed the world already); one it
// places goes where it says, and a shard it does not know is no hint.
func TestRouterFollowsTheSendersShardForAWorldItsMapDoesNotPlace(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Shards: []MapShard{{ID: 0, Voters: []string{"n1"}}, {ID: 5, Voters: []string{"n2"}}},
		Worlds: map[string]uint64{"here": 0, "there": 5},
	})
	c.leader("here")
	r := c.routers["n1"]
	hashed, err := r.ShardOf("fresh")
	require.NoError(t, err)
	for _, hint := range []uint64{0, 5} {
		loc, err := r.LocateIn("fresh", hint)
		if hint == 0 {
			require.NoError(t, err)
			require.Equal(t, uint64(0), loc.Group)
			require.NotNil(t, loc.Store, "n1 runs shard 0")
		} else {
			require.ErrorIs(t, err, ErrUnknownGroup, "shard 5 runs on n2 only")
		}
	}
	loc, err := r.LocateIn("here", 5)
	require.NoError(t, err, "placed on shard 0 by n1's own map")
	require.Equal(t, uint64(0), loc.Group)
	_, err = r.LocateIn("there", 0)
	require.ErrorIs(t, err, ErrUnknownGroup, "placed on shard 5 by n1's own map")
	_, errIn := r.LocateIn("fresh", 99)
	_, errHash := r.Locate("fresh")
	require.Equal(t, errHash == nil, errIn == nil, "no shard 99: routed by the hash, to shard %d", hashed)
	loc, err = r.LocateIn("", 5)
	require.NoError(t, err, "the membership group")
	require.Equal(t, c.smap.Membership, loc.Group)
}

// The Backend reads each world from this node's replica of its group, and
// answers for the node itself from the membership group.
func TestBackendReadsEachWorldFromItsGroup(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1"}}, {ID: 3, Voters: []string{"n2"}}},
		Worlds:     map[string]uint64{"wa": 1, "wb": 2, "wc": 3},
	})
	_, err := NewBackend(c.routers["n2"])
	require.ErrorIs(t, err, ErrUnknownGroup, "n2 does not run the membership group")
	b, err := NewBackend(c.routers["n1"])
	require.NoError(t, err)
	for _, w := range []string{"wa", "wb"} {
		_, st := c.leader(w)
		mustCreateWorld(t, st, w)
	}
	evA := c.act("wa", 1)
	evB := c.act("wb", 1)
	c.act("wb", 2)

	ctx := context.Background()
	var ids []string
	for _, w := range b.Worlds() {
		ids = append(ids, w.ID)
	}
	require.Equal(t, []string{"wa", "wb"}, ids)
	wb, err := b.World("wb")
	require.NoError(t, err)
	require.Equal(t, evB.Seq+1, wb.Seq, "wb from its own group")
	v, err := b.Entity(ctx, "wa", "e", store.Stale)
	require.NoError(t, err)
	require.Equal(t, evA.Seq, v.Seq)
	v, err = b.Entity(ctx, "wb", "e", store.Stale)
	require.NoError(t, err)
	require.Equal(t, evB.Seq+1, v.Seq, "wb's own group")
	_, err = b.Hash("wb", evB.Seq)
	require.NoError(t, err)
	ents, seq, err := b.Entities("wb")
	require.NoError(t, err)
	require.Equal(t, evB.Seq+1, seq, "wb's own group")
	require.Len(t, ents, 1)
	ev, ok := b.Event("wb", seq)
	require.True(t, ok)
	require.Equal(t, "wb", ev.World)
	_, ok = b.Event("wa", evA.Seq+5)
	require.False(t, ok)
	sub, err := b.Subscribe("wa", evA.Seq)
	require.NoError(t, err)
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	evs, err := sub.Next(nctx)
	require.NoError(t, err)
	require.Equal(t, "wa", evs[0].World)
	require.Equal(t, evA.Seq, evs[0].Seq)
	_, err = b.SessionInfo("wa", "nobody")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrUnknownGroup)
	sessions, err := b.Sessions("wa")
	require.NoError(t, err)
	require.Empty(t, sessions)
	_, banned := b.Banned("wa", "p")
	require.False(t, banned)
	bans, err := b.Bans("wb")
	require.NoError(t, err)
	require.Empty(t, bans)

	// wc is on a group n1 does not run.
	_, err = b.Entity(ctx, "wc", "e", store.Stale)
	require.ErrorIs(t, err, ErrUnknownGroup)
	_, err = b.Hash("wc", 1)
	require.ErrorIs(t, err, ErrUnknownGroup)
	_, _, err = b.Entities("wc")
	require.ErrorIs(t, err, ErrUnknownGroup)
	_, ok = b.Event("wc", 1)
	require.False(t, ok)
	_, err = b.World("wc")
	require.ErrorIs(t, err, ErrUnknownGroup)
	_, err = b.Subscribe("wc", 1)
	require.ErrorIs(t, err, ErrUnknownGroup)
	_, err = b.SessionInfo("wc", "s")
	require.ErrorIs(t, err, store.ErrNotLeader)
	_, err = b.Sessions("wc")
	require.ErrorIs(t, err, ErrUnknownGroup)
	_, banned = b.Banned("wc", "p")
	require.False(t, banned)
	_, err = b.Bans("wc")
	require.ErrorIs(t, err, ErrUnknownGroup)

	home, _ := c.mgrs["n1"].Group(1)
	require.Equal(t, home.Status().ID, b.Status().ID)
	require.Equal(t, home.Status().Leader, b.Status().Leader)
	require.True(t, b.Ready())
	_, err = b.Snapshot(ctx)
	require.NoError(t, err)
}

// A group's node table learns a leader's HTTP address once it has led
// and recorded it; until then (here: never, the nodes run without one)
// the router takes it from the map.
func TestRouterTakesTheLeadersAddressFromTheMap(t *testing.T) {
	all := []string{"n1", "n2", "n3"}
	c := newShardClusterWith(t, 3, Map{Shards: []MapShard{{ID: 4, Voters: all}}}, func(cfg *store.Config) { cfg.HTTPAddr = "" })
	leaderID, _ := c.leader("w")
	for _, id := range c.ids {
		if id == leaderID {
			continue
		}
		require.Eventually(t, func() bool {
			loc, err := c.routers[id].Locate("w")
			return err == nil && loc.Node == leaderID && loc.Addr == c.smap.Nodes[leaderID].HTTP
		}, 10*time.Second, 5*time.Millisecond, "node %s routes w to %s", id, leaderID)
	}
}
