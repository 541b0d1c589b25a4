package pg

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/syncbuf"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// requireFakeMirrored waits until the database holds world's events of
// incarnation inc up to n and checks they equal the source's.
func requireFakeMirrored(t *testing.T, dsn string, src *fakeSource, world string, inc int64, n int) {
	t.Helper()
	events := src.Events(world)
	require.Eventually(t, func() bool { return storedPosition(t, dsn, world) == uint64(len(events)) }, 10*time.Second, 10*time.Millisecond)
	got := readRows(t, dsn, world, inc)
	require.Equal(t, n, len(got))
	for i, r := range got {
		want, err := RowOf(events[len(events)-n+i])
		require.NoError(t, err)
		require.Equal(t, want, r)
	}
}

func TestArchiveGapRaisesTheAlarmUntilTheEventIsHeld(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 10, 1000)
	src.SetLow("w", 5) // 1..4 pruned before the sink ever ran
	r := runSink(t, testConfig(dsn), src)
	require.Eventually(t, func() bool {
		return r.gauge("gsd_pgsink_archive_gap", "world", "w") == 1 && r.gauge("gsd_pgsink_errors_total", "kind", "archive_gap") > 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, storedPosition(t, dsn, "w"), "nothing is written past a gap")

	src.SetLow("w", 1) // e.g. a node that still holds them leads now
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 10)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_archive_gap", "world", "w") == 0 }, 10*time.Second, 10*time.Millisecond)
}

func TestPrunedGapMidStreamRaisesTheAlarm(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 3, 1000)
	r := runSink(t, testConfig(dsn), src)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 3)
	r.stop()
	src.Add("w", 5, 1000)
	src.SetLow("w", 6) // 4 and 5 pruned while no sink ran
	r = runSink(t, testConfig(dsn), src)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_archive_gap", "world", "w") == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, uint64(3), storedPosition(t, dsn, "w"))
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_lag_events", "world", "w") == 5 }, 10*time.Second, 10*time.Millisecond)
}

// A world from before incarnations (the node knows it as 0) with seq 1
// pruned: the sink cannot read its incarnation from the node, and goes on
// with the newest incarnation in the database only when its last mirrored
// event is the node's event at that seq.
func TestResumeWithoutTheFirstEventChecksTheLastMirroredOne(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 10, 1000)
	src.SetIncarnation("w", 0)
	r := runSink(t, testConfig(dsn), src)
	requireFakeMirrored(t, dsn, src, "w", -1001, 10)
	r.stop()

	// The same world, seq 1 pruned: it goes on.
	src.Add("w", 5, 1000)
	src.SetLow("w", 8)
	r = runSink(t, testConfig(dsn), src)
	requireFakeMirrored(t, dsn, src, "w", -1001, 15)
	r.stop()

	// Another world of that name (other leader times), seq 1 pruned: refused.
	other := newFakeSource()
	other.Add("w", 20, 5000)
	other.SetIncarnation("w", 0)
	other.SetLow("w", 12)
	r = runSink(t, testConfig(dsn), other)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "incarnation") > 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, uint64(15), storedPosition(t, dsn, "w"))
	require.Len(t, readRows(t, dsn, "w", -1001), 15)
}

func TestResumeWithoutTheFirstEventOrTheLastMirroredOneGoesOn(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 4, 1000)
	src.SetIncarnation("w", 0)
	r := runSink(t, testConfig(dsn), src)
	requireFakeMirrored(t, dsn, src, "w", -1001, 4)
	r.stop()
	src.Add("w", 4, 1000)
	src.SetLow("w", 5) // neither seq 1 nor 4 held: trust the database
	r = runSink(t, testConfig(dsn), src)
	requireFakeMirrored(t, dsn, src, "w", -1001, 8)
	r.stop()
}

// A cluster rebuilt from empty data dirs against the same database creates
// its worlds at the same log indexes: the sink finds that the database's
// events of that incarnation are not the node's and refuses to mirror the
// world, rather than mixing the two or skipping the new one's first
// events, whether the node is ahead of the stored position or behind it.
func TestSameIncarnationOfAnotherClusterIsRefused(t *testing.T) {
	for name, n := range map[string]int{"ahead": 20, "behind": 3} {
		t.Run(name, func(t *testing.T) {
			_, dsn := startPG(t)
			src := newFakeSource()
			src.Add("w", 10, 1000)
			r := runSink(t, testConfig(dsn), src)
			requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 10)
			r.stop()

			other := newFakeSource()
			other.Add("w", n, 5000)
			require.Equal(t, src.Incarnation("w"), other.Incarnation("w"))
			r = runSink(t, testConfig(dsn), other)
			require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "incarnation") > 0 }, 10*time.Second, 10*time.Millisecond)
			other.Add("w", 10, 6000)
			refused := r.gauge("gsd_pgsink_errors_total", "kind", "incarnation")
			require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "incarnation") > refused+1 }, 10*time.Second, 10*time.Millisecond)
			r.stop()
			require.Equal(t, uint64(10), storedPosition(t, dsn, "w"))
			requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 10)
		})
	}
}

func TestOnlyTheLeaderOfAWorldsGroupWritesIt(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 3, 1000)
	src.SetLeads("w", false)
	r := runSink(t, testConfig(dsn), src)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_schema_version") == float64(SchemaVersion) }, 10*time.Second, 10*time.Millisecond)
	// Some checks pass without a mirror for w.
	for range 3 {
		require.Zero(t, r.gauge("gsd_pgsink_worlds"))
		require.Zero(t, storedPosition(t, dsn, "w"))
		<-time.After(testConfig(dsn).CheckInterval)
	}
	src.SetLeads("w", true)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 3)
	require.Equal(t, 1.0, r.gauge("gsd_pgsink_worlds"))
	src.SetLeads("w", false)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_worlds") == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, r.gauge("gsd_pgsink_position", "world", "w"), "a world no longer mirrored here has no series")
}

func TestWriteRefusesOnceLeadershipIsLost(t *testing.T) {
	src := newFakeSource()
	src.Add("w", 1, 1000)
	src.SetLeads("w", false)
	s, err := New(testConfig("host=/nonexistent"), src, nil)
	require.NoError(t, err)
	m := &mirror{s: s, world: "w"}
	ev, _ := src.Event("w", 1)
	_, err = m.write(context.Background(), 1, 0, []*fsm.Event{ev})
	require.ErrorIs(t, err, errNotLeading)
	m.report(err, s.backoff()) // not counted as an error
	require.Zero(t, testutilCount(s.m.errors))
}

func testutilCount(c *prometheus.CounterVec) int {
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	n := 0
	for range ch {
		n++
	}
	return n
}

func TestFeedOutOfOrderIsRetriedFromTheStoredPosition(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 4, 1000)
	ev3, _ := src.Event("w", 3)
	src.Update(func() { src.Edit("w").Order = []*fsm.Event{ev3} })
	r := runSink(t, testConfig(dsn), src)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "feed") > 0 }, 10*time.Second, 10*time.Millisecond)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 4)
}

func TestFeedNotStartingAtSeqOneIsRefused(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 4, 1000)
	src.SetLow("w", 2) // no stored rows, seq 1 not held, yet the feed answers from 1
	ev2, _ := src.Event("w", 2)
	src.Update(func() { src.Edit("w").Low, src.Edit("w").Order = 1, []*fsm.Event{ev2} })
	src.Update(func() { src.Edit("w").Low = 1 })
	r := runSink(t, testConfig(dsn), src)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "feed") > 0 }, 10*time.Second, 10*time.Millisecond)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 4)
}

func TestEventThatDoesNotFitIsReportedNotWritten(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 1, 1000)
	src.Update(func() { src.Edit("w").Events[0].Index = math.MaxUint64 })
	r := runSink(t, testConfig(dsn), src)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "feed") > 0 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, storedPosition(t, dsn, "w"))
}

func TestDatabaseDownAtStartIsRetriedUntilItComes(t *testing.T) {
	pg, dsn := startPG(t)
	pg.Kill(t)
	src := newFakeSource()
	src.Add("w", 5, 1000)
	r := runSink(t, testConfig(dsn), src)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "database") >= 2 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, r.gauge("gsd_pgsink_schema_version"))
	pg.Restart(t)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 5)
}

func TestDatabaseDownMidStreamIsCountedAndRetried(t *testing.T) {
	pg, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 5, 1000)
	r := runSink(t, testConfig(dsn), src)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 5)
	pg.Kill(t)
	src.Add("w", 5, 1000)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "database") > 0 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_lag_seconds", "world", "w") > 0 }, 10*time.Second, 10*time.Millisecond)
	pg.Restart(t)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 10)
}

func TestSchemaOfANewerGsdIsLeftAlone(t *testing.T) {
	_, dsn := startPG(t)
	conn := connect(t, dsn)
	_, err := conn.Exec(context.Background(), `CREATE SCHEMA gsd; CREATE TABLE gsd.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO gsd.schema_version (version) VALUES (1), (99)`)
	require.NoError(t, err)
	src := newFakeSource()
	src.Add("w", 1, 1000)
	r := runSink(t, testConfig(dsn), src)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "database") >= 2 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, r.gauge("gsd_pgsink_schema_version"))
	var exists bool
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT to_regclass('gsd.events') IS NOT NULL`).Scan(&exists))
	require.False(t, exists, "no table of this version is created in a newer schema")

	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	defer pool.Close()
	_, err = migrate(context.Background(), pool, "gsd")
	require.ErrorIs(t, err, ErrSchemaNewer)
}

func TestMigrationsRunOnceUnderConcurrentNodes(t *testing.T) {
	_, dsn := startPG(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	defer pool.Close()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			var v int
			v, errs[i] = migrate(context.Background(), pool, "studio_x")
			if errs[i] == nil && v != SchemaVersion {
				errs[i] = errors.New("wrong version")
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	var n, max int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM studio_x.schema_version`).Scan(&n, &max))
	require.Equal(t, SchemaVersion, n)
	require.Equal(t, SchemaVersion, max)
}

func TestMigrateFailsOnADatabaseItCannotWrite(t *testing.T) {
	_, dsn := startPG(t)
	conn := connect(t, dsn)
	_, err := conn.Exec(context.Background(), `CREATE ROLE reader LOGIN`)
	require.NoError(t, err)
	pool, err := pgxpool.New(context.Background(), strings.Replace(dsn, "user=gsd", "user=reader", 1))
	require.NoError(t, err)
	defer pool.Close()
	_, err = migrate(context.Background(), pool, "gsd")
	require.Error(t, err)

	// A schema whose tables are in the way fails its migration, whole.
	_, err = conn.Exec(context.Background(), `CREATE SCHEMA gsd; CREATE TABLE gsd.events (x int)`)
	require.NoError(t, err)
	pool2, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	defer pool2.Close()
	_, err = migrate(context.Background(), pool2, "gsd")
	require.ErrorContains(t, err, "version 1")
	var exists bool
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT to_regclass('gsd.worlds') IS NOT NULL`).Scan(&exists))
	require.False(t, exists)
}

// A database that accepts connections and never answers fails each call
// after Config.Timeout, so the sink retries instead of hanging.
func TestDatabaseThatNeverAnswersFailsEachCallAfterTheTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	cfg := testConfig("host=127.0.0.1 port=" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + " user=gsd sslmode=disable")
	cfg.Timeout = 100 * time.Millisecond
	src := newFakeSource()
	src.Add("w", 1, 1000)
	r := runSink(t, cfg, src)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_errors_total", "kind", "database") >= 2 }, 10*time.Second, 10*time.Millisecond)
	r.stop()
	require.NoError(t, l.Close())
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer = syncbuf.Buffer

func TestLagPastHalfTheRetentionIsWarnedOncePerCrossing(t *testing.T) {
	_, dsn := startPG(t)
	var logs syncBuffer
	cfg := testConfig(dsn)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Retention.MaxEventsPerWorld = 8
	const warning = "lags by more than half of the event archive's retention"
	src := newFakeSource()
	src.Add("w", 10, 1000)
	src.SetLow("w", 2) // stuck: seq 1 is not held
	r := runSink(t, cfg, src)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), warning) }, 10*time.Second, 10*time.Millisecond)
	for range 3 { // more checks pass while the lag stays
		<-time.After(cfg.CheckInterval)
	}
	require.Equal(t, 1, strings.Count(logs.String(), warning))

	src.SetLow("w", 1)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 10)
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_lag_events", "world", "w") == 0 }, 10*time.Second, 10*time.Millisecond)
	src.AddPruned("w", 10, 1000, 21) // stuck again, 10 behind: a second crossing (at once: the sink must not mirror 11..20 first)
	require.Eventually(t, func() bool { return strings.Count(logs.String(), warning) == 2 }, 10*time.Second, 10*time.Millisecond)
}

func TestLagPastHalfTheRetentionByAgeIsWarned(t *testing.T) {
	_, dsn := startPG(t)
	var logs syncBuffer
	cfg := testConfig(dsn)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Retention.MaxAge = time.Hour
	src := newFakeSource()
	src.Add("w", 1, 1000)                                                 // leader time in 1970: older than any retention
	src.Update(func() { src.Edit("w").Events[0].Index = math.MaxUint64 }) // never written
	runSink(t, cfg, src)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "lags by more than half of the event archive's retention")
	}, 10*time.Second, 10*time.Millisecond)
}
