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
	require.Eventually(t, func() bool {
		ev, err := s.arch.get("arena", 30)
		require.NoError(t, err)
		return ev == nil
	}, 10*time.Second, 10*time.Millisecond, "old events were not pruned")
	_, err := s.Subscribe("arena", 1)
	require.ErrorIs(t, err, ErrArchiveGap)
	sub, err := s.Subscribe("arena", 31)
	require.NoError(t, err)
	evs, err := sub.Next(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, uint64(31), evs[0].Seq)
}
