package webhook

import (
	"context"
	"encoding/json"
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
	cfg.NoSync, cfg.Bootstrap, cfg.Logger = true, true, testConfig(t, "http://x", "x").Logger
	st, err := store.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	require.Eventually(t, st.IsLeader, 10*time.Second, 10*time.Millisecond)
	return st
}

func TestExportFromARealStoreWhileActionsCommitSurvivesAKill(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	require.NoError(t, st.CreateWorld(ctx, "w", fsm.Rules{}))
	r := newReceiver(t, func(n int) fault {
		switch {
		case n%5 == 0:
			return faultKeepThen500
		case n%4 == 0:
			return fault500
		}
		return faultNone
	})

	// Commit actions from a goroutine the whole time.
	wctx, stopWriting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var committed uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); wctx.Err() == nil; seq++ {
			a := &fsm.Action{World: "w", Player: "p" + strconv.Itoa(int(seq%3)), Seq: seq,
				Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hits", By: 1}}}
			if ev, _, err := st.Act(wctx, a); err == nil {
				committed = ev.Seq
			}
		}
	}()

	cfg := testConfig(t, r.srv.URL, t.TempDir())
	first := startSink(t, cfg, NewStoreSource(st), nil)
	require.Eventually(t, func() bool { d, _ := r.world("w"); return len(d) >= 50 }, 30*time.Second, time.Millisecond)
	first.stop()
	second := startSink(t, cfg, NewStoreSource(st), nil)
	require.Eventually(t, func() bool { d, _ := r.world("w"); return len(d) >= 150 }, 30*time.Second, time.Millisecond)
	stopWriting()
	wg.Wait()
	// An action cancelled by stopWriting may still commit: compare with
	// the world as it is once the export caught up.
	var last uint64
	require.Eventually(t, func() bool {
		last = st.Worlds()[0].Seq
		return second.s.Position("w") == last
	}, 30*time.Second, time.Millisecond)
	require.GreaterOrEqual(t, last, committed)
	second.stop()

	require.Empty(t, r.problems())
	dedup, all := r.world("w")
	require.Len(t, dedup, int(last))
	for seq := uint64(1); seq <= last; seq++ {
		ev, ok := st.Event("w", seq)
		require.True(t, ok)
		want, _ := json.Marshal(ev.Wire())
		have, _ := json.Marshal(dedup[seq])
		require.JSONEq(t, string(want), string(have), "event %d", seq)
	}
	t.Logf("%d events, %d deliveries", last, all)
}
