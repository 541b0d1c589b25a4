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
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// newStore starts a one-node store and waits until it leads.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	return newCluster(t, 1)[0]
}

// newCluster starts n in-process stores over loopback TCP, the first
// bootstrapping and leading, the others joined as voters.
func newCluster(t *testing.T, n int) []*store.Store {
	t.Helper()
	base := t.TempDir()
	var nodes []*store.Store
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		cfg := store.DefaultConfig()
		cfg.ID = "n" + strconv.Itoa(i+1)
		cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = filepath.Join(base, cfg.ID), addr, "http-"+cfg.ID
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		cfg.ApplyTimeout, cfg.SnapshotInterval = 5*time.Second, time.Hour
		cfg.NoSync, cfg.Bootstrap, cfg.Logger = true, i == 0, testConfig(t, "http://x", "x").Logger
		st, err := store.New(cfg, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close(context.Background()) })
		if i == 0 {
			require.Eventually(t, st.LeaderReady, 10*time.Second, 10*time.Millisecond)
		} else {
			require.Eventually(t, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				return leaderOf(nodes).Join(ctx, fsm.NodeInfo{ID: cfg.ID, RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr, Versions: fsm.Supported()}) == nil
			}, 10*time.Second, 50*time.Millisecond)
		}
		nodes = append(nodes, st)
	}
	return nodes
}

// leaderOf returns the node that leads now, or nodes[0].
func leaderOf(nodes []*store.Store) *store.Store {
	for _, st := range nodes {
		if st.IsLeader() {
			return st
		}
	}
	return nodes[0]
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
	first := startSink(t, cfg, feed.NewStoreSource(st), nil)
	require.Eventually(t, func() bool { d, _ := r.world("w"); return len(d) >= 50 }, 30*time.Second, time.Millisecond)
	first.stop()
	second := startSink(t, cfg, feed.NewStoreSource(st), nil)
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

func TestExportSurvivesLeaderFailoverEveryEventAtLeastOnce(t *testing.T) {
	nodes := newCluster(t, 3)
	ctx := context.Background()
	require.NoError(t, nodes[0].CreateWorld(ctx, "w", fsm.Rules{}))
	r := newReceiver(t, func(n int) fault {
		if n%4 == 0 {
			return fault500
		}
		return faultNone
	})
	// Every node runs the sink with its own data dir, as gsd does.
	var sinks []running
	for _, st := range nodes {
		sinks = append(sinks, startSink(t, testConfig(t, r.srv.URL, t.TempDir()), feed.NewStoreSource(st), nil))
	}
	act := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			a := &fsm.Action{World: "w", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hits", By: 1}}}
			require.Eventually(t, func() bool {
				actx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				_, _, err := leaderOf(nodes).Act(actx, a)
				return err == nil
			}, 20*time.Second, 10*time.Millisecond)
		}
	}
	act(1, 60)
	require.Eventually(t, func() bool { d, _ := r.world("w"); return len(d) >= 30 }, 30*time.Second, time.Millisecond)
	old := leaderOf(nodes)
	require.NoError(t, old.TransferLeadership(ctx))
	require.Eventually(t, func() bool { l := leaderOf(nodes); return l != old && l.LeaderReady() }, 10*time.Second, 10*time.Millisecond)
	act(61, 120)
	var last uint64
	require.Eventually(t, func() bool {
		last = leaderOf(nodes).Worlds()[0].Seq
		d, _ := r.world("w")
		return len(d) == int(last)
	}, 30*time.Second, time.Millisecond)
	for _, s := range sinks {
		s.stop()
	}
	require.Empty(t, r.problems())
	dedup, all := r.world("w")
	for seq := uint64(1); seq <= last; seq++ {
		ev, ok := leaderOf(nodes).Event("w", seq)
		require.True(t, ok)
		want, _ := json.Marshal(ev.Wire())
		have, _ := json.Marshal(dedup[seq])
		require.JSONEq(t, string(want), string(have), "event %d", seq)
	}
	t.Logf("%d events, %d deliveries across a failover", last, all)
}
