package webhook

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// With replicated positions, the group's new leader resumes the export
// where the old one last stored its position in the store, not from its
// own (empty) checkpoint file: after the leader is killed mid-stream no
// event is missing, and the only repeats are the events delivered since
// the old leader's last write (at most Every plus one batch).
func TestExportResumesFromTheReplicatedPositionAfterTheLeaderIsKilled(t *testing.T) {
	nodes := newCluster(t, 3)
	ctx := context.Background()
	require.Eventually(t, func() bool { // once the leader's barrier applied
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := nodes[0].CreateWorld(cctx, "w", fsm.Rules{})
		return err == nil || errors.Is(err, fsm.ErrWorldExists)
	}, 10*time.Second, 10*time.Millisecond)
	r := newReceiver(t, nil)
	const every = 20
	var sinks []running
	for i, st := range nodes {
		rep, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "webhook", Writer: "n" + strconv.Itoa(i+1), Every: every, Interval: time.Hour},
			func(string) (feed.PositionGroup, error) { return st, nil })
		require.NoError(t, err)
		cfg := testConfig(t, r.srv.URL, t.TempDir())
		cfg.Positions = rep
		sinks = append(sinks, startSink(t, cfg, feed.NewStoreSource(st), nil))
	}

	wctx, stopWriting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); wctx.Err() == nil; {
			a := &fsm.Action{World: "w", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hits", By: 1}}}
			actx, cancel := context.WithTimeout(wctx, 2*time.Second)
			_, _, err := leaderOf(nodes).Act(actx, a)
			cancel()
			if err == nil {
				seq++
			}
		}
	}()
	require.Eventually(t, func() bool { d, _ := r.world("w"); return len(d) >= 300 }, 30*time.Second, time.Millisecond)
	var old int
	for i, st := range nodes {
		if st.IsLeader() {
			old = i
		}
	}
	// Killed: its store goes first, so its sink stores nothing more.
	require.NoError(t, nodes[old].Close(ctx))
	sinks[old].stop()
	require.Eventually(t, func() bool { l := leaderOf(nodes); return l != nodes[old] && l.LeaderReady() }, 10*time.Second, 10*time.Millisecond)
	d, _ := r.world("w")
	atKill := uint64(len(d))
	require.Eventually(t, func() bool { d, _ := r.world("w"); return uint64(len(d)) >= atKill+100 }, 30*time.Second, time.Millisecond)
	stopWriting()
	wg.Wait()
	leader := leaderOf(nodes)
	var last uint64
	require.Eventually(t, func() bool {
		w, err := leader.World("w")
		require.NoError(t, err)
		last = w.Seq
		d, _ := r.world("w")
		return uint64(len(d)) == last
	}, 30*time.Second, time.Millisecond)
	for i, s := range sinks {
		if i != old {
			s.stop()
		}
	}
	require.Empty(t, r.problems())
	dedup, all := r.world("w")
	for seq := uint64(1); seq <= last; seq++ {
		_, ok := dedup[seq]
		require.True(t, ok, "event %d missing", seq)
	}
	repeats := all - len(dedup)
	t.Logf("%d events, %d repeats across the failover", last, repeats)
	require.LessOrEqual(t, repeats, every+testConfig(t, "http://x", "x").BatchSize, "repeats beyond the unsaved window")

	// The position is in the store: the reserved world, hidden, server-written.
	info, err := leader.World(feed.PositionsWorld)
	require.NoError(t, err)
	require.Equal(t, feed.PositionsRules().Fields, info.Rules.Fields)
	inc, ok := feed.Incarnation(feed.NewStoreSource(leader), "w")
	require.True(t, ok)
	rep, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "webhook", Writer: "reader", Every: 1, Interval: time.Hour},
		func(string) (feed.PositionGroup, error) { return leader, nil })
	require.NoError(t, err)
	seq, found, err := rep.Load(ctx, "w", inc)
	require.NoError(t, err)
	require.True(t, found)
	require.LessOrEqual(t, seq, last)
	require.Greater(t, seq+every+uint64(testConfig(t, "http://x", "x").BatchSize), last, "written at least every %d events", every)
	_, err = leader.Entity(ctx, feed.PositionsWorld, "nope", store.Stale)
	require.Error(t, err)
}

// A sink stopped while its node leads (a clean shutdown) stores its last
// position on the way out, so the next leader repeats nothing.
func TestExportStoresTheReplicatedPositionWhenStoppedCleanly(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	require.Eventually(t, func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := st.CreateWorld(cctx, "w", fsm.Rules{})
		return err == nil || errors.Is(err, fsm.ErrWorldExists)
	}, 10*time.Second, 10*time.Millisecond)
	for seq := uint64(1); seq <= 50; seq++ {
		_, _, err := st.Act(ctx, &fsm.Action{World: "w", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hits", By: 1}}})
		require.NoError(t, err)
	}
	r := newReceiver(t, nil)
	rep := func() *feed.Replicated {
		rep, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "webhook", Writer: "n1", Every: 1000, Interval: time.Hour},
			func(string) (feed.PositionGroup, error) { return st, nil })
		require.NoError(t, err)
		return rep
	}
	cfg := testConfig(t, r.srv.URL, t.TempDir())
	cfg.Positions = rep()
	s := startSink(t, cfg, feed.NewStoreSource(st), nil)
	require.Eventually(t, func() bool { return s.s.Position("w") == 50 }, 20*time.Second, time.Millisecond)
	s.stop()
	inc, ok := feed.Incarnation(feed.NewStoreSource(st), "w")
	require.True(t, ok)
	seq, found, err := rep().Load(ctx, "w", inc)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, uint64(50), seq, "stored at the session's end, not only every 1000 events")
}
