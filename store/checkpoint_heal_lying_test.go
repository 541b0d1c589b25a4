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
func TestCorruptedReplicaIsHealedAndRejoinsAsAVoter(t *testing.T) {
	var (
		mu sync.Mutex
		c  *cluster
	)
	moved := make(chan string, 1)
	c, found := mismatchCluster(t, func(cfg *Config) {
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
	mu.Lock()
	healed := c.nodes[0]
	for _, s := range c.nodes {
		if s.cfg.ID == odd.cfg.ID {
			healed = s
		}
	}
	mu.Unlock()
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
