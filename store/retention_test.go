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

func TestArchivePruneByAgeKeepsNewerEvents(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) { cfg.Retention = Retention{} })
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	mustCreateWorld(t, s, "empty")
	for seq := uint64(1); seq <= 5; seq++ {
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	ev, ok := s.Event("arena", 3)
	require.True(t, ok)
	require.NoError(t, s.feed.waitArchived(s.adapter.appliedIndex()))
	// Everything strictly older than event 3's leader time goes.
	n, err := s.arch.prune(ev.Time, 0, 1)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	got, err := s.arch.read("arena", 3, 10)
	require.NoError(t, err)
	require.Len(t, got, 3)
	none, err := s.arch.get("arena", 2)
	require.NoError(t, err)
	require.Nil(t, none)
}
