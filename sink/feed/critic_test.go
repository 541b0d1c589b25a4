package feed

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// The webhook and files sinks of one node keep their positions with the
// same Writer (the node's id) in the same group, each with its own action
// seqs from the clock's milliseconds: two saves in the same millisecond
// (both sinks follow the same worlds and save on the same batches) must
// not share an action seq, or the fsm refuses the second as a reused seq
// and that sink's position is not stored.
func TestTwoSinksOfOneNodeSaveTheirPositionsInTheSameMillisecond(t *testing.T) {
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
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return st.ReadBarrier(ctx) == nil
	}, 10*time.Second, 10*time.Millisecond)

	ctx := context.Background()
	require.NoError(t, st.CreateWorld(ctx, PositionsWorld, PositionsRules())) // an earlier save made it
	group := func(string) (PositionGroup, error) { return st, nil }
	webhook, err := NewReplicated(ReplicatedConfig{Sink: "webhook", Writer: "n1", Every: 1, Interval: time.Hour}, group)
	require.NoError(t, err)
	files, err := NewReplicated(ReplicatedConfig{Sink: "files", Writer: "n1", Every: 1, Interval: time.Hour}, group)
	require.NoError(t, err)
	// Both in the same millisecond (set ahead, so the clock does not move
	// between them).
	same := uint64(time.Now().Add(time.Hour).UnixMilli())
	webhook.last, files.last = same, same

	wrote, err := webhook.Save(ctx, "w", Position{Incarnation: 1, Seq: 10}, true)
	require.NoError(t, err)
	require.True(t, wrote)
	wrote, err = files.Save(ctx, "w", Position{Incarnation: 1, Seq: 7}, true)
	require.NoError(t, err, "the files sink's position")
	require.True(t, wrote)
	got, found, err := files.Load(ctx, "w", 1)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, uint64(7), got)
}
