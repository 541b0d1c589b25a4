package pg

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/internal/pgtest"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func testLogger() *slog.Logger {
	if os.Getenv("GSD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig returns a sink config with short intervals for dsn.
func testConfig(dsn string) Config {
	cfg := DefaultConfig()
	cfg.DSN = dsn
	cfg.BatchSize = 64
	cfg.CheckInterval = 50 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.Logger = testLogger()
	return cfg
}

// running is a sink running in the background until stop or the test's end.
type running struct {
	sink *Sink
	reg  *prometheus.Registry
	stop func()
}

func runSink(t *testing.T, cfg Config, src Source) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, src, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return &running{sink: s, reg: reg, stop: stop}
}

// gauge returns a sink metric's value (0 when the series does not exist).
func (r *running) gauge(name string, labels ...string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			for i, lp := range m.GetLabel() {
				if i*2+1 >= len(labels) || lp.GetName() != labels[i*2] || lp.GetValue() != labels[i*2+1] {
					continue next
				}
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	return 0
}

// histogramCount returns how many observations a sink histogram holds.
func (r *running) histogramCount(name string) uint64 {
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	return addr
}

// cluster is n in-process stores over loopback TCP.
type cluster struct {
	t     *testing.T
	nodes []*store.Store
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	base := t.TempDir()
	for i := range n {
		cfg := store.DefaultConfig()
		cfg.ID = "n" + strconv.Itoa(i+1)
		cfg.Dir = filepath.Join(base, cfg.ID)
		cfg.RaftAddr, cfg.HTTPAddr = freePort(t), "http-"+cfg.ID
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		cfg.ApplyTimeout, cfg.SnapshotInterval = 5*time.Second, time.Hour
		cfg.NoSync, cfg.Bootstrap, cfg.Logger = true, i == 0, testLogger()
		s, err := store.New(cfg, nil)
		require.NoError(t, err)
		c.nodes = append(c.nodes, s)
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		if i == 0 {
			c.leader()
			continue
		}
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return c.leader().Join(ctx, fsm.NodeInfo{ID: cfg.ID, RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr, Versions: fsm.Supported()}) == nil
		}, 10*time.Second, 50*time.Millisecond)
	}
	return c
}

// leader waits for a leader among the open nodes.
func (c *cluster) leader() *store.Store {
	c.t.Helper()
	var l *store.Store
	require.Eventually(c.t, func() bool {
		for _, s := range c.nodes {
			if s != nil && s.LeaderReady() {
				l = s
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no leader")
	return l
}

func (c *cluster) createWorld(id string) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := c.leader().CreateWorld(ctx, id, fsm.Rules{})
		return err == nil || errors.Is(err, fsm.ErrWorldExists)
	}, 10*time.Second, 10*time.Millisecond)
}

// act commits one action through the current leader, retrying with the
// same client seq until it is committed (so it commits exactly once).
func (c *cluster) act(a *fsm.Action) *fsm.Event {
	c.t.Helper()
	var ev *fsm.Event
	require.Eventually(c.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		ev, _, err = c.leader().Act(ctx, a)
		return err == nil
	}, 20*time.Second, 10*time.Millisecond)
	return ev
}

// writer commits actions to worlds until stopped, and says how many.
type writer struct {
	stop func() int
}

// startWriter acts on each world in turn from a goroutine: increments,
// and every fifth action a set that expects its field absent (applied
// once, then conflicts).
func (c *cluster) startWriter(worlds ...string) *writer {
	var stopped atomic.Bool
	done := make(chan int, 1)
	go func() {
		n := 0
		for !stopped.Load() {
			w := worlds[n%len(worlds)]
			seq := uint64(n + 1)
			a := &fsm.Action{World: w, Player: "p" + strconv.Itoa(n%3), Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hits", By: 1}}}
			if n%5 == 4 {
				a.Ops = []fsm.Op{{Kind: fsm.OpSet, Entity: "e", Field: "flag", Value: wire.Int(int64(n)), Expect: fsm.Expect{Mode: fsm.ExpectAbsent}}}
			}
			// Retry with the same seq until the action is committed, even
			// when stopped meanwhile: no proposal is left in flight, so
			// the world's seq stands still once stop returns.
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				var err error = store.ErrNotLeader
				if l := c.leaderNow(); l != nil {
					_, _, err = l.Act(ctx, a)
				}
				cancel()
				if err == nil {
					break
				}
				<-time.After(5 * time.Millisecond) // retry pacing
			}
			n++
		}
		done <- n
	}()
	return &writer{stop: func() int { stopped.Store(true); return <-done }}
}

// leaderNow returns the current leader or nil, without waiting.
func (c *cluster) leaderNow() *store.Store {
	for _, s := range c.nodes {
		if s != nil && s.IsLeader() {
			return s
		}
	}
	return nil
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// storedPosition returns the mirror's stored position of world (any
// incarnation's newest), or 0.
func storedPosition(t *testing.T, dsn, world string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var seq int64
	if err := conn.QueryRow(ctx, `SELECT seq FROM gsd.worlds WHERE world = $1 ORDER BY updated_at DESC LIMIT 1`, world).Scan(&seq); err != nil {
		return 0
	}
	return uint64(seq)
}

// requireMirrorEquals waits until the database holds world's events up
// to the node's seq, then checks the rows equal the node's events: every
// seq once, no other.
func requireMirrorEquals(t *testing.T, dsn string, node *store.Store, world string) {
	t.Helper()
	var seq uint64
	for _, w := range node.Worlds() {
		if w.ID == world {
			seq = w.Seq
		}
	}
	require.NotZero(t, seq, "world %s has no events", world)
	require.Eventually(t, func() bool { return storedPosition(t, dsn, world) >= seq }, 30*time.Second, 20*time.Millisecond,
		"mirror of %s did not reach seq %d", world, seq)
	got := readRows(t, dsn, world, incarnation(t, node, world))
	require.Equal(t, int(seq), len(got), "world %s: rows", world)
	for i, r := range got {
		ev, ok := node.Event(world, uint64(i+1))
		require.True(t, ok)
		want, err := RowOf(ev)
		require.NoError(t, err)
		require.Equal(t, want, r, "world %s seq %d", world, i+1)
	}
}

// incarnation returns the incarnation the sink names node's world by now.
func incarnation(t *testing.T, node *store.Store, world string) int64 {
	t.Helper()
	inc, ok := feed.Incarnation(feed.NewStoreSource(node), world)
	require.True(t, ok, "world %s", world)
	return inc
}

// readRows returns a world incarnation's rows in seq order.
func readRows(t *testing.T, dsn, world string, inc int64) []Row {
	t.Helper()
	conn := connect(t, dsn)
	ctx := context.Background()
	rs, err := conn.Query(ctx, `SELECT seq, raft_index, time_ns, player, client_seq::text, priority, status, reason, changes::text
		FROM gsd.events WHERE world = $1 AND incarnation = $2 ORDER BY seq`, world, inc)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (Row, error) {
		var row Row
		var seq, idx int64
		var cseq, changes string
		if err := r.Scan(&seq, &idx, &row.TimeNs, &row.Player, &cseq, &row.Priority, &row.Status, &row.Reason, &changes); err != nil {
			return row, err
		}
		row.Seq, row.Index = uint64(seq), uint64(idx)
		var err error
		if row.ClientSeq, err = strconv.ParseUint(cseq, 10, 64); err != nil {
			return row, err
		}
		return row, json.Unmarshal([]byte(changes), &row.Changes)
	})
	require.NoError(t, err)
	return out
}

func startPG(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv := pgtest.Start(t)
	return srv, srv.DSN("postgres")
}
