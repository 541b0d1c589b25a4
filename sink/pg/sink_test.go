package pg

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestMirrorEqualsWorldAndSkipsWorldsNotListed(t *testing.T) {
	_, dsn := startPG(t)
	c := newCluster(t, 1)
	c.createWorld("w1")
	c.createWorld("w2")
	c.createWorld("other")
	c.act(&fsm.Action{World: "w1", Player: "p\x00nul", Seq: 1, Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "e", Field: "name", Value: wire.String("a\x00b \\u0000")}}})
	c.act(&fsm.Action{World: "w1", Player: "p", Seq: 2, Priority: fsm.PriorityBulk, Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "e", Field: "name", Value: wire.String("x"), Expect: fsm.Expect{Mode: fsm.ExpectAbsent}}}})
	c.act(&fsm.Action{World: "w1", Player: "p", Seq: ^uint64(0), Ops: []fsm.Op{{Kind: fsm.OpDelete, Entity: "e"}}})
	for i := range 300 { // more than one read and one batch
		c.act(&fsm.Action{World: "w2", Player: "q", Seq: uint64(i + 1), Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
	}
	c.act(&fsm.Action{World: "other", Player: "q", Seq: 1, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})

	cfg := testConfig(dsn)
	cfg.Worlds = []string{"w1", "w2"}
	r := runSink(t, cfg, feed.NewStoreSource(c.nodes[0]))
	requireMirrorEquals(t, dsn, c.nodes[0], "w1")
	requireMirrorEquals(t, dsn, c.nodes[0], "w2")
	c.act(&fsm.Action{World: "w2", Player: "q", Seq: 301, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
	requireMirrorEquals(t, dsn, c.nodes[0], "w2")
	require.Zero(t, storedPosition(t, dsn, "other"), "a world not listed is not mirrored")

	rows := readRows(t, dsn, "w1", incarnation(t, c.nodes[0], "w1"))
	require.Equal(t, "p\uFFFDnul", rows[0].Player, "NUL is written as U+FFFD")
	require.Equal(t, "a\uFFFDb \\u0000", rows[0].Changes[0].Value.Str)
	require.Equal(t, "conflict", rows[1].Status)
	require.Equal(t, "bulk", rows[1].Priority)
	require.Equal(t, ^uint64(0), rows[2].ClientSeq)

	require.Eventually(t, func() bool {
		return r.gauge("gsd_pgsink_lag_events", "world", "w2") == 0 && r.gauge("gsd_pgsink_position", "world", "w2") == 301
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 2.0, r.gauge("gsd_pgsink_worlds"))
	require.Equal(t, float64(SchemaVersion), r.gauge("gsd_pgsink_schema_version"))
	require.Equal(t, 304.0, r.gauge("gsd_pgsink_events_inserted_total"))
	// Batching: w2's backlog of 300 goes in transactions of at most
	// BatchSize (64), so at least 5 of them plus w1's and seq 301's, and
	// not one per event (a loose upper bound: reads may split a batch).
	batches := r.gauge("gsd_pgsink_batches_total")
	require.GreaterOrEqual(t, batches, 7.0, "no transaction holds more than BatchSize events")
	require.LessOrEqual(t, batches, 12.0, "the backlog is written in batches, not event by event")
	require.Positive(t, r.histogramCount("gsd_pgsink_write_seconds"))
	require.Zero(t, r.gauge("gsd_pgsink_lag_seconds", "world", "w1"))

	var ts time.Time
	conn := connect(t, dsn)
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT leader_time FROM gsd.events WHERE world = 'w1' AND seq = 1`).Scan(&ts))
	require.WithinDuration(t, time.Unix(0, mustEvent(t, c, "w1", 1).Time), ts, time.Millisecond)
}

func mustEvent(t *testing.T, c *cluster, world string, seq uint64) *fsm.Event {
	t.Helper()
	ev, ok := c.leader().Event(world, seq)
	require.True(t, ok)
	return ev
}

// The must-show: kill the sink and the database mid-stream,
// restart both, and the mirror equals the world.
func TestSinkAndDatabaseKilledMidStreamMirrorLosesNothingRepeatsNothing(t *testing.T) {
	pg, dsn := startPG(t)
	c := newCluster(t, 1)
	c.createWorld("w")
	w := c.startWriter("w")
	cfg := testConfig(dsn)
	r1 := runSink(t, cfg, feed.NewStoreSource(c.nodes[0]))
	require.Eventually(t, func() bool { return storedPosition(t, dsn, "w") >= 50 }, 30*time.Second, 10*time.Millisecond)
	r1.stop() // the sink stops mid-stream

	at := storedPosition(t, dsn, "w")
	require.Eventually(t, func() bool { return c.nodes[0].Worlds()[0].Seq > at+50 }, 30*time.Second, 10*time.Millisecond)
	r2 := runSink(t, cfg, feed.NewStoreSource(c.nodes[0]))
	require.Eventually(t, func() bool { return storedPosition(t, dsn, "w") > at+50 }, 30*time.Second, 10*time.Millisecond)

	pg.Kill(t) // the database dies mid-stream
	require.Eventually(t, func() bool { return r2.gauge("gsd_pgsink_errors_total", "kind", "database") > 0 }, 30*time.Second, 10*time.Millisecond)
	pg.Restart(t)
	at = storedPosition(t, dsn, "w")
	require.Eventually(t, func() bool { return storedPosition(t, dsn, "w") > at+50 }, 30*time.Second, 10*time.Millisecond)

	n := w.stop()
	require.Positive(t, n)
	requireMirrorEquals(t, dsn, c.nodes[0], "w")
}

// Leadership moves mid-stream: the old leader's sink stops writing the
// world, the new leader's resumes from the stored position.
func TestNewLeaderResumesTheMirrorWhenLeadershipMoves(t *testing.T) {
	_, dsn := startPG(t)
	c := newCluster(t, 3)
	c.createWorld("w")
	w := c.startWriter("w")
	cfg := testConfig(dsn)
	var sinks []*running
	for _, n := range c.nodes {
		sinks = append(sinks, runSink(t, cfg, feed.NewStoreSource(n)))
	}
	leaderIdx := func() int {
		l := c.leader()
		for i, n := range c.nodes {
			if n == l {
				return i
			}
		}
		return -1
	}
	// Only the leader's sink mirrors.
	first := leaderIdx()
	require.Eventually(t, func() bool { return storedPosition(t, dsn, "w") >= 30 }, 30*time.Second, 10*time.Millisecond)
	for i, s := range sinks {
		want := 0.0
		if i == first {
			want = 1
		}
		require.Equal(t, want, s.gauge("gsd_pgsink_worlds"), "node %d", i)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	require.NoError(t, c.nodes[first].TransferLeadership(ctx))
	cancel()
	second := -1
	require.Eventually(t, func() bool { second = leaderIdx(); return second >= 0 && second != first }, 10*time.Second, 10*time.Millisecond)
	at := storedPosition(t, dsn, "w")
	require.Eventually(t, func() bool { return storedPosition(t, dsn, "w") > at+30 }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return sinks[first].gauge("gsd_pgsink_worlds") == 0 && sinks[second].gauge("gsd_pgsink_worlds") == 1
	}, 10*time.Second, 10*time.Millisecond)

	// The new leader fails over again: it closes (handing leadership on).
	sinks[second].stop()
	require.NoError(t, c.nodes[second].Close(context.Background()))
	at = storedPosition(t, dsn, "w")
	require.Eventually(t, func() bool { return storedPosition(t, dsn, "w") > at+30 }, 30*time.Second, 10*time.Millisecond)

	w.stop()
	requireMirrorEquals(t, dsn, c.leader(), "w")
}

// A world deleted and created again in a running cluster is a new
// incarnation, named by its creation index as GET /v1/worlds names it:
// the sink mirrors it from seq 1 beside the old incarnation's rows.
func TestRecreatedWorldOfARealStoreIsMirroredFromSeqOneBesideTheOldRows(t *testing.T) {
	_, dsn := startPG(t)
	c := newCluster(t, 1)
	node := c.nodes[0]
	c.createWorld("w")
	for j := range 5 {
		c.act(&fsm.Action{World: "w", Player: "p", Seq: uint64(j + 1), Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
	}
	r := runSink(t, testConfig(dsn), feed.NewStoreSource(node))
	requireMirrorEquals(t, dsn, node, "w")
	info, err := node.World("w")
	require.NoError(t, err)
	old := incarnation(t, node, "w")
	require.Equal(t, int64(info.Incarnation), old, "the sink's incarnation is the world's creation index")
	oldRows := readRows(t, dsn, "w", old)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = node.DeleteWorld(ctx, "w", info.Incarnation)
	require.NoError(t, err)
	c.createWorld("w")
	for j := range 3 {
		c.act(&fsm.Action{World: "w", Player: "p", Seq: uint64(j + 1), Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 10}}})
	}
	inc := incarnation(t, node, "w")
	require.Greater(t, inc, old)
	require.Eventually(t, func() bool { return len(readRows(t, dsn, "w", inc)) == 3 }, 30*time.Second, 20*time.Millisecond)
	requireMirrorEquals(t, dsn, node, "w")
	r.stop()

	require.Equal(t, oldRows, readRows(t, dsn, "w", old), "the old incarnation's rows stay as they were")
	var n int
	require.NoError(t, connect(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM gsd.worlds WHERE world = 'w'`).Scan(&n))
	require.Equal(t, 2, n, "one position per incarnation")
}

// A world of the same name in a cluster rebuilt from empty data dirs
// against the same database has the same creation index (the same
// commands at the same log indexes) but other events: the sink refuses
// to mirror it beside, or over, the old rows.
func TestRebuiltClusterWorldWithTheSameIncarnationIsRefused(t *testing.T) {
	_, dsn := startPG(t)
	cfg := testConfig(dsn)
	// Both clusters create the world at the same log index: each pads its
	// log with other worlds up to it (elections and leader barriers add
	// entries at their own times), and one whose world still lands
	// elsewhere is built again.
	const at = 24
	build := func(by int64, actions int) *cluster {
		for attempt := 0; attempt < 5; attempt++ {
			c := newCluster(t, 1)
			node := c.nodes[0]
			for pad := 0; node.Status().LastIndex+1 < at; pad++ {
				c.createWorld("pad" + strconv.Itoa(pad))
			}
			c.createWorld("w")
			if incarnation(t, node, "w") != at {
				require.NoError(t, node.Close(context.Background()))
				continue
			}
			for j := range actions {
				c.act(&fsm.Action{World: "w", Player: "p", Seq: uint64(j + 1), Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: by}}})
			}
			return c
		}
		t.Fatalf("no cluster created its world at index %d", at)
		return nil
	}
	first := build(1, 5)
	first.setData("w", "p", fsm.DataItem{Key: "gold", Value: fsm.Int(1)})
	r := runSink(t, cfg, NewStoreSource(first.nodes[0]))
	requireMirrorEquals(t, dsn, first.nodes[0], "w")
	requirePlayersMirrored(t, dsn, first.nodes[0], "w")
	players, err := readPlayers(context.Background(), dsn, "w", at)
	require.NoError(t, err)
	r.stop()
	require.NoError(t, first.nodes[0].Close(context.Background()))

	rebuilt := build(2, 6)
	rebuilt.setData("w", "p", fsm.DataItem{Key: "gold", Value: fsm.Int(2)})
	rebuilt.setData("w", "q", fsm.DataItem{Key: "gold", Value: fsm.Int(3)})
	r = runSink(t, cfg, NewStoreSource(rebuilt.nodes[0]))
	// Refused more than once: the player mirror has had its checks meanwhile.
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "incarnation") > 2 }, 30*time.Second, 10*time.Millisecond)
	r.stop()
	require.NoError(t, rebuilt.nodes[0].Close(context.Background()))
	require.Len(t, readRows(t, dsn, "w", at), 5, "the old cluster's rows only")
	require.Equal(t, uint64(5), storedPosition(t, dsn, "w"))
	after, err := readPlayers(context.Background(), dsn, "w", at)
	require.NoError(t, err)
	require.Equal(t, players, after, "the old cluster's player rows only")
}
