package files

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// newStore starts a one-node store and waits until it serves actions.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = "n1", filepath.Join(t.TempDir(), "n1"), addr, "http-n1"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	cfg.ApplyTimeout, cfg.SnapshotInterval = 5*time.Second, time.Hour
	cfg.NoSync, cfg.Bootstrap, cfg.Logger = true, true, slog.New(slog.DiscardHandler)
	st, err := store.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	// Leading is not enough: actions wait for the leader's barrier.
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return st.ReadBarrier(ctx) == nil
	}, 10*time.Second, 10*time.Millisecond)
	return st
}

// A node that takes over a world's export goes on after the last file the
// previous leader finished, as the replicated position says, although its
// own directory holds none of them.
func TestFilesOfANewLeaderStartAfterTheReplicatedPosition(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	require.NoError(t, st.CreateWorld(ctx, "w", fsm.Rules{}))
	act := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			_, _, err := st.Act(ctx, &fsm.Action{World: "w", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
			require.NoError(t, err)
		}
	}
	rep := func(writer string) *feed.Replicated {
		r, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "files", Writer: writer, Every: 1000, Interval: time.Hour},
			func(string) (feed.PositionGroup, error) { return st, nil })
		require.NoError(t, err)
		return r
	}
	src := feed.NewStoreSource(st)
	inc, ok := feed.Incarnation(src, "w")
	require.True(t, ok)
	act(1, 50)
	dirA, dirB := t.TempDir(), t.TempDir()
	cfg := testConfig(dirA)
	cfg.Positions = rep("a")
	a := startSink(t, cfg, src)
	require.Eventually(t, at(a.s, "w", 50), 10*time.Second, time.Millisecond)
	a.stop()

	act(51, 80)
	cfg = testConfig(dirB)
	cfg.Positions = rep("b")
	b := startSink(t, cfg, src)
	require.Eventually(t, at(b.s, "w", 80), 10*time.Second, time.Millisecond)
	b.stop()
	require.Equal(t, seqRange(1, 50), lines(t, dirA, "w")[inc])
	require.Equal(t, seqRange(51, 80), lines(t, dirB, "w")[inc], "the new leader's files start after the old one's")
	require.Empty(t, lines(t, dirB, feed.PositionsWorld), "the positions world is not exported")
}
