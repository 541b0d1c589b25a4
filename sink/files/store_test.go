package files

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// newStore starts a one-node store and waits until it leads.
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
	cfg.NoSync, cfg.Bootstrap, cfg.Logger = true, true, testConfig("x").Logger
	st, err := store.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	require.Eventually(t, st.IsLeader, 10*time.Second, 10*time.Millisecond)
	return st
}

func TestFilesFromARealStoreWhileActionsCommitHoldEachEventOnce(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	require.NoError(t, st.CreateWorld(ctx, "w", fsm.Rules{}))
	wctx, stopWriting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); wctx.Err() == nil; seq++ {
			a := &fsm.Action{World: "w", Player: "p" + strconv.Itoa(int(seq%3)), Seq: seq,
				Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hits", By: 1}}}
			_, _, _ = st.Act(wctx, a)
		}
	}()
	dir := t.TempDir()
	cfg := testConfig(dir)
	first := startSink(t, cfg, NewStoreSource(st))
	require.Eventually(t, func() bool { return first.s.Position("w") >= 50 }, 30*time.Second, time.Millisecond)
	first.stop()
	second := startSink(t, cfg, NewStoreSource(st))
	require.Eventually(t, func() bool { return second.s.Position("w") >= 150 }, 30*time.Second, time.Millisecond)
	stopWriting()
	wg.Wait()
	var last uint64
	require.Eventually(t, func() bool {
		last = st.Worlds()[0].Seq
		return second.s.Position("w") == last // MaxAge finishes the last file
	}, 30*time.Second, time.Millisecond)
	second.stop()

	got := readFiles(t, dir, "w")
	require.Len(t, got, int(last))
	for i, ev := range got {
		want, ok := st.Event("w", uint64(i+1))
		require.True(t, ok)
		require.Equal(t, want.Wire(), ev, "event %d", i+1)
	}
}
