//go:build gsd_lying_leader

package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// TestCorruptedReplicaIsHealedAndRejoinsAsAVoter: with healing on, the
// leader removes a follower whose state a failing disk changed, has it
// move its data aside and start empty (what gsd does on the heal order),
// and adds it again: it catches up from the majority, every replica ends
// with the same hash, and the finding is an event on the world.
// healingCluster is mismatchCluster with healing on: HealReplica does
// what gsd does on the heal order, in process: it closes the node's
// store, moves its data dir aside, and opens it again empty (no
// bootstrap), so the leader's AddVoter brings it back. moved gets the
// directories moved aside; mu guards c.nodes, which heals replace.
func healingCluster(t *testing.T) (c *cluster, found chan CheckpointMismatch, moved chan string, mu *sync.Mutex) {
	mu = new(sync.Mutex)
	moved = make(chan string, 4)
	c, found = mismatchCluster(t, func(cfg *Config) {
		cfg.ConfirmMark = func(_ context.Context, _ uint64, n fsm.NodeInfo, world string, index uint64) (uint64, bool, error) {
			if s := nodeOf(c, mu, n.ID); s != nil {
				h, known := s.CheckpointMark(world, index)
				return h, known, nil
			}
			return 0, false, fmt.Errorf("no node %s", n.ID)
		}
		cfg.HealReplica = func(ctx context.Context, _ uint64, n fsm.NodeInfo) error {
			mu.Lock()
			defer mu.Unlock()
			for i, s := range c.nodes {
				if s.cfg.ID != n.ID {
					continue
				}
				if err := s.Close(ctx); err != nil {
					return err
				}
				cfg := c.cfgs[i]
				aside := fmt.Sprintf("%s.diverged-%d", cfg.Dir, time.Now().UnixNano())
				if err := os.Rename(cfg.Dir, aside); err != nil {
					return err
				}
				moved <- aside
				cfg.Bootstrap = false
				fresh, err := New(cfg, nil)
				if err != nil {
					return err
				}
				t.Cleanup(func() { _ = fresh.Close(context.Background()) })
				c.nodes[i] = fresh
				return nil
			}
			return fmt.Errorf("no node %s", n.ID)
		}
	})
	return c, found, moved, mu
}

// nodeOf returns c's current store of node id.
func nodeOf(c *cluster, mu *sync.Mutex, id string) *Store {
	mu.Lock()
	defer mu.Unlock()
	for _, s := range c.nodes {
		if s.cfg.ID == id {
			return s
		}
	}
	return nil
}

func TestCorruptedReplicaIsHealedAndRejoinsAsAVoter(t *testing.T) {
	c, found, moved, mu := healingCluster(t)
	mu.Lock()
	l := c.leader()
	mu.Unlock()
	mustCreateWorld(t, l, "w")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err := l.Act(ctx, setHP(1, 50))
	require.NoError(t, err)
	c.waitReplicated()
	odd := followersOf(c, l)[0]
	require.True(t, odd.fsm.Corrupt("w", "mallory", "hp", fsm.Int(99)))
	_, _, err = l.Act(ctx, incr("w", "ann", 1, "ann", "score", 1))
	require.NoError(t, err)
	var m CheckpointMismatch
	select {
	case m = <-found:
	case <-ctx.Done():
		t.Fatal("the corrupted replica was not named")
	}
	require.Equal(t, odd.cfg.ID, m.Node)
	down, err := l.ReportMismatch(m) // what the daemon's forwarder does
	require.NoError(t, err)
	require.False(t, down)

	require.Eventually(t, func() bool { return testutil.ToFloat64(l.metrics.heals.WithLabelValues("healed")) == 1 },
		20*time.Second, 10*time.Millisecond, "failed: %v", testutil.ToFloat64(l.metrics.heals.WithLabelValues("failed")))
	aside := <-moved
	_, err = os.Stat(filepath.Join(aside, "raft.db"))
	require.NoError(t, err, "the diverged state is kept for forensics")
	require.True(t, l.IsLeader())
	require.True(t, isVoter(t, l, odd.cfg.ID), "the odd replica is a voter again")
	healed := nodeOf(c, mu, odd.cfg.ID)
	require.NotSame(t, odd, healed)
	c.ensureSameHashes("w")
	v, err := healed.fsm.Entity("w", "mallory")
	require.NoError(t, err)
	require.Len(t, v.Fields, 1)
	require.Equal(t, fsm.Int(50), v.Fields[0].Value, "the majority's state, not the corrupted one")

	// The finding is an event on the world, on every replica.
	seq, err := l.Hash("w", 0)
	require.NoError(t, err)
	var notice *fsm.Notice
	for s := uint64(1); s <= seq.Seq; s++ {
		if n := noticeAt(healed, "w", s); n != nil {
			notice = n
		}
	}
	require.Equal(t, &fsm.Notice{Kind: fsm.NoticeCheckpointMismatch, Node: odd.cfg.ID, Index: m.Index, Leader: l.cfg.ID}, notice)
}

// TestLyingLeaderStepsDownAndIsHealedByTheNewLeader: outvoted, the liar
// hands over leadership; the new leader's next checkpoint finds the old
// leader alone in the minority, and heals it.
func TestLyingLeaderStepsDownAndIsHealedByTheNewLeader(t *testing.T) {
	c, found, moved, mu := healingCluster(t)
	mu.Lock()
	liar := c.leader()
	mu.Unlock()
	mustCreateWorld(t, liar, "w")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	liar.fsm.Lie(true)
	ev, _, err := liar.Act(ctx, setHP(1, 999_999))
	require.NoError(t, err)
	require.Equal(t, fsm.StatusApplied, ev.Status, "what the lying leader's client is told")
	down := false
	for !down {
		select {
		case m := <-found:
			if m.Leader != liar.cfg.ID {
				continue
			}
			d, err := liar.ReportMismatch(m)
			require.NoError(t, err)
			down = down || d
		case <-ctx.Done():
			t.Fatal("the liar was not outvoted")
		}
	}
	// The first report made a minority: the liar tried to heal its
	// reporter, but no other voter confirmed the liar's hash.
	require.Eventually(t, func() bool { return testutil.ToFloat64(liar.metrics.heals.WithLabelValues("skipped")) == 1 },
		10*time.Second, 10*time.Millisecond)
	require.Zero(t, testutil.ToFloat64(liar.metrics.heals.WithLabelValues("healed")), "an outvoted leader heals nobody")
	require.Zero(t, testutil.ToFloat64(liar.metrics.heals.WithLabelValues("failed")))
	var next *Store
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		next = c.waitLeader()
		return next != liar
	}, 10*time.Second, 10*time.Millisecond)
	// The new leader's checkpoints: the old leader alone differs.
	_, _, err = next.Act(ctx, incr("w", "ann", 1, "ann", "score", 1))
	require.NoError(t, err)
	for {
		var m CheckpointMismatch
		select {
		case m = <-found:
		case <-ctx.Done():
			t.Fatal("the old leader did not report the new leader's checkpoint")
		}
		if m.Leader != next.cfg.ID {
			continue
		}
		require.Equal(t, liar.cfg.ID, m.Node)
		d, err := next.ReportMismatch(m)
		require.NoError(t, err)
		require.False(t, d)
		break
	}
	require.Eventually(t, func() bool { return testutil.ToFloat64(next.metrics.heals.WithLabelValues("healed")) == 1 },
		20*time.Second, 10*time.Millisecond, "failed %v skipped %v", testutil.ToFloat64(next.metrics.heals.WithLabelValues("failed")),
		testutil.ToFloat64(next.metrics.heals.WithLabelValues("skipped")))
	<-moved
	healed := nodeOf(c, mu, liar.cfg.ID)
	require.NotSame(t, liar, healed)
	require.True(t, isVoter(t, next, liar.cfg.ID))
	c.ensureSameHashes("w")
	got, ok := healed.Event("w", ev.Seq)
	require.True(t, ok)
	require.Equal(t, fsm.StatusRejected, got.Status, "the healed node holds the majority's outcome of the cheat")
}
