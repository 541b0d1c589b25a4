package meta

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// writer acts on one world through whichever node leads its shard, one
// player seq at a time: an attempt that fails is retried with the same
// seq, so it applies at most once (a retry of an applied attempt answers
// the original event). acked counts the seqs answered; pending is set
// while the current seq's outcome is unknown.
type writer struct {
	world   string
	acked   atomic.Int64
	pending atomic.Bool
}

func (c *metaCluster) leaderStore(world string) *store.Store {
	for _, id := range c.ids {
		if loc, err := c.routers[id].Locate(world); err == nil && loc.Store != nil {
			return loc.Store
		}
	}
	return nil
}

func (w *writer) run(c *metaCluster, stop <-chan struct{}) {
	for seq := uint64(1); ; {
		select {
		case <-stop:
			return
		default:
		}
		st := c.leaderStore(w.world)
		if st == nil {
			select { // no leader known this instant: look again
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		a := &fsm.Action{World: w.world, Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}}
		ev, _, err := st.Act(ctx, a)
		cancel()
		if err == nil && ev.Status == fsm.StatusApplied {
			w.acked.Add(1)
			w.pending.Store(false)
			seq++
			continue
		}
		w.pending.Store(true)
	}
}

// configVoters returns the number of voters in a shard's Raft
// configuration as its leader has it (0: no leader now).
func (c *metaCluster) configVoters(shardID uint64) int {
	for _, id := range c.ids {
		st, ok := c.mgrs[id].Group(shardID)
		if !ok || !st.IsLeader() {
			continue
		}
		config, err := st.Members()
		if err != nil {
			return 0
		}
		n := 0
		for _, s := range config {
			if s.Suffrage == raft.Voter {
				n++
			}
		}
		return n
	}
	return 0
}

// Evacuating n1 from two shards under writers (n1 leading shard 1): each
// shard's voter is replaced one shard at a time, the map and the Raft configurations never
// hold fewer than 3 voters, no acknowledged write is lost, the new voters
// agree on every world's state, and n1 no longer runs the shards nor
// keeps their data; n1 re-added to shard 1 afterwards starts clean and
// catches up.
func TestEvacuatingANodeReplacesItsVoterInEveryShardUnderWriters(t *testing.T) {
	c := newMetaCluster(t, 5)
	c.addNodes()
	c.propose("n2", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
	c.propose("n2", Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n1", "n4", "n5"}})
	worlds := map[string]uint64{"a": 1, "b": 2}
	for w, s := range worlds {
		c.propose("n2", Command{Op: OpAssignWorld, World: w, Shard: s})
		leader := c.shardLeader(w)
		loc, err := c.routers[leader].Locate(w)
		require.NoError(t, err)
		require.NoError(t, loc.Store.CreateWorld(context.Background(), w, fsm.Rules{}))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writers []*writer
	for w := range worlds {
		wr := &writer{world: w}
		writers = append(writers, wr)
		wg.Go(func() { wr.run(c, stop) })
	}
	// A watcher samples the map's and the configurations' voters.
	var low atomic.Int64
	low.Store(99)
	watchStop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-watchStop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			for _, s := range []uint64{1, 2} {
				sh, _ := c.group("n3").View().Map.Shard(s)
				n := int64(len(sh.Voters))
				if v := int64(c.configVoters(s)); v > 0 {
					n = min(n, v)
				}
				if n < low.Load() {
					low.Store(n)
				}
			}
		}
	})
	require.Eventually(t, func() bool {
		return writers[0].acked.Load() > 20 && writers[1].acked.Load() > 20
	}, 20*time.Second, 5*time.Millisecond, "the writers write")

	// n1 leads shard 1, so its replacement also hands the leadership on.
	require.Eventually(t, func() bool {
		st, ok := c.mgrs["n1"].Group(1)
		if ok && st.IsLeader() {
			return true
		}
		for _, id := range []string{"n2", "n3"} {
			if st, ok := c.mgrs[id].Group(1); ok && st.IsLeader() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = st.TransferLeadership(ctx)
				cancel()
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "n1 leads shard 1")

	// Evacuate n1: shard 1 gets n4, shard 2 gets n2, one at a time.
	for _, r := range []Command{
		{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n4"},
		{Op: OpReplaceVoter, Shard: 2, Node: "n1", New: "n2"},
	} {
		c.propose("n3", r)
		require.Eventually(t, func() bool {
			sh, _ := c.group("n3").View().Map.Shard(r.Shard)
			return !slices.Contains(sh.Voters, "n1") && slices.Contains(sh.Voters, r.New)
		}, 30*time.Second, 5*time.Millisecond, "shard %d replaces n1 with %s", r.Shard, r.New)
		acked := writers[0].acked.Load() + writers[1].acked.Load()
		require.Eventually(t, func() bool {
			return writers[0].acked.Load()+writers[1].acked.Load() > acked+10
		}, 20*time.Second, 5*time.Millisecond, "writes go on after shard %d's replacement", r.Shard)
	}
	for _, s := range []uint64{1, 2} {
		require.Eventually(t, func() bool {
			_, runs := c.mgrs["n1"].Group(s)
			return !runs && !c.mgrs["n1"].HasGroupData(s) && c.configVoters(s) == 3
		}, 30*time.Second, 5*time.Millisecond, "n1 drops shard %d and its data; the configuration has 3 voters", s)
	}
	close(stop)
	wg.Wait()
	close(watchStop)
	watch.Wait()
	require.GreaterOrEqual(t, low.Load(), int64(3), "a shard's voters never fell below 3")

	want := map[uint64][]string{1: {"n2", "n3", "n4"}, 2: {"n2", "n4", "n5"}}
	for i, wr := range writers {
		s := worlds[wr.world]
		leader := c.leaderStore(wr.world)
		require.NotNil(t, leader)
		ent, err := leader.Entity(context.Background(), wr.world, "e", store.Linearizable)
		require.NoError(t, err)
		var n int64
		for _, f := range ent.Fields {
			if f.Name == "n" {
				n = f.Value.Int
			}
		}
		maybe := int64(0)
		if wr.pending.Load() {
			maybe = 1 // the last seq's outcome is unknown
		}
		require.GreaterOrEqual(t, n, wr.acked.Load(), "writer %d: no acknowledged write lost", i)
		require.LessOrEqual(t, n, wr.acked.Load()+maybe, "writer %d: nothing applied twice", i)
		// Every new voter holds the same state at the same seq.
		require.Eventually(t, func() bool {
			var seqs, hashes []uint64
			for _, id := range want[s] {
				st, ok := c.mgrs[id].Group(s)
				if !ok {
					return false
				}
				for _, w := range st.Worlds() {
					if w.ID == wr.world {
						seqs, hashes = append(seqs, w.Seq), append(hashes, w.Hash)
					}
				}
			}
			return len(seqs) == 3 && seqs[0] == seqs[1] && seqs[1] == seqs[2] && hashes[0] == hashes[1] && hashes[1] == hashes[2]
		}, 20*time.Second, 5*time.Millisecond, fmt.Sprintf("the voters of shard %d agree on %s", s, wr.world))
	}

	// n1 comes back to shard 1 (in n4's place): its old data is gone, so
	// it starts clean from the leader's log and ends with the same state.
	c.propose("n3", Command{Op: OpReplaceVoter, Shard: 1, Node: "n4", New: "n1"})
	require.Eventually(t, func() bool {
		sh, _ := c.group("n3").View().Map.Shard(1)
		return slices.Equal(sh.Voters, []string{"n1", "n2", "n3"})
	}, 30*time.Second, 5*time.Millisecond, "n1 takes n4's seat in shard 1")
	require.Eventually(t, func() bool {
		var hashes []uint64
		for _, id := range []string{"n1", "n2", "n3"} {
			st, ok := c.mgrs[id].Group(1)
			if !ok {
				return false
			}
			for _, w := range st.Worlds() {
				if w.ID == "a" {
					hashes = append(hashes, w.Hash)
				}
			}
		}
		return len(hashes) == 3 && hashes[0] == hashes[1] && hashes[1] == hashes[2]
	}, 20*time.Second, 5*time.Millisecond, "n1 re-added holds shard 1's state")
	require.Eventually(t, func() bool {
		_, runs := c.mgrs["n4"].Group(1)
		return !runs && !c.mgrs["n4"].HasGroupData(1)
	}, 30*time.Second, 5*time.Millisecond, "n4 drops shard 1")
}
