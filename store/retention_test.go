package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestArchiveRetentionPrunesOldEventsAndSubscribersSeeTheGap(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.TailSize = 4
		cfg.Retention = Retention{MaxEventsPerWorld: 10, Interval: 10 * time.Millisecond}
	})
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	for seq := uint64(1); seq <= 40; seq++ {
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	// The archive keeps events in runs and drops a run only when its last
	// event is keep behind the newest: under load one run may span seq 30
	// and the newest, so more events are written until seq 30 goes.
	seq := uint64(40)
	require.Eventually(t, func() bool {
		// What is applied is archived (the writer's rounds are paced):
		// a missing seq 30 is then a pruned one.
		if err := s.feed.waitArchived(s.adapter.appliedIndex()); err != nil {
			return false
		}
		ev, err := s.arch.get("arena", 30)
		if err != nil || ev == nil {
			return err == nil
		}
		seq++
		_, _, _ = s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1)) // an error only delays the prune
		return false
	}, 10*time.Second, 10*time.Millisecond, "old events were not pruned")
	floor, err := s.arch.pruned("arena")
	require.NoError(t, err)
	require.GreaterOrEqual(t, floor, uint64(30))
	_, err = s.Subscribe("arena", 1)
	require.ErrorIs(t, err, ErrArchiveGap)
	sub, err := s.Subscribe("arena", floor+1)
	require.NoError(t, err)
	evs, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, floor+1, evs[0].Seq)
}
