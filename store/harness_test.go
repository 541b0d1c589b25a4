package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// freePort returns a loopback address with a port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	return addr
}

func testLogger() *slog.Logger {
	if os.Getenv("GSD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig returns a config with short timeouts for loopback clusters.
func testConfig(t testing.TB, id, dir string) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.Dir = dir
	cfg.RaftAddr = freePort(t)
	cfg.HTTPAddr = "http-" + id
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	cfg.SnapshotInterval = time.Hour
	cfg.Logger = testLogger()
	return cfg
}

// cluster is N in-process stores over real loopback TCP.
type cluster struct {
	t     testing.TB
	nodes []*Store
	cfgs  []Config
}

// newCluster starts n nodes: the first bootstraps, the others join it.
func newCluster(t testing.TB, n int, tweak func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t}
	base := t.TempDir()
	for i := 0; i < n; i++ {
		cfg := testConfig(t, "n"+strconv.Itoa(i+1), filepath.Join(base, "n"+strconv.Itoa(i+1)))
		cfg.Bootstrap = i == 0
		if tweak != nil {
			tweak(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		s, err := New(cfg, nil)
		require.NoError(t, err)
		c.nodes = append(c.nodes, s)
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		if i == 0 {
			c.waitLeader()
			continue
		}
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return c.add(ctx, cfg) == nil
		}, 10*time.Second, 50*time.Millisecond)
	}
	c.waitReplicated()
	return c
}

// add makes cfg's node a voter through the leader, reporting no versions
// (the baseline, until a test reports them with Join). It skips Join's
// floor check (versions.go): a test cluster plays nodes on older binaries
// as if they had joined while every member ran one, as in a rolling
// upgrade; the floor check has its own tests (joingate_test.go).
func (c *cluster) add(ctx context.Context, cfg Config) error {
	return c.leader().addMember(ctx, fsm.NodeInfo{ID: cfg.ID, RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr})
}

// leader returns the current ready leader, waiting for one.
func (c *cluster) leader() *Store {
	c.t.Helper()
	return c.waitLeader()
}

func (c *cluster) waitLeader() *Store {
	c.t.Helper()
	var l *Store
	require.Eventually(c.t, func() bool {
		for _, s := range c.nodes {
			if s != nil && !s.isClosed() && s.LeaderReady() {
				l = s
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no leader")
	return l
}

// waitReplicated waits until every live node applied the leader's last
// entry that reaches the FSM (a trailing commit notice or leader barrier
// never does: notice.go).
// waitRegistered waits until leader s has written its own addresses and
// versions into the node table (registerSelf, which a new leader runs in
// the background): tests that count entries or watch the batcher must not
// see those commands land in the middle.
func waitRegistered(t testing.TB, s *Store) {
	t.Helper()
	require.Eventually(t, func() bool {
		n, ok := s.fsm.Node(s.cfg.ID)
		return ok && sameAddrs(n, s.Self()) && n.Versions == s.Versions()
	}, 10*time.Second, time.Millisecond, "the leader did not register itself")
}

func (c *cluster) waitReplicated() {
	c.t.Helper()
	l := c.waitLeader()
	want, err := l.lastAppliable(l.raft.LastIndex())
	require.NoError(c.t, err)
	require.Eventually(c.t, func() bool {
		for _, s := range c.nodes {
			if s != nil && !s.isClosed() && s.adapter.appliedIndex() < want {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "replicas did not catch up to %d", want)
}

// restart reopens node i on its data dir (no bootstrap, no join).
func (c *cluster) restart(i int) *Store {
	c.t.Helper()
	cfg := c.cfgs[i]
	cfg.Bootstrap = false
	s, err := New(cfg, nil)
	require.NoError(c.t, err)
	c.nodes[i] = s
	c.t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// crash stops node i without handing over leadership. Its batcher stops
// first, as Close stops it before Raft: a commit notice proposed while
// Raft shuts down can land in Raft's apply channel unread, which v1.7.3
// never answers, and its goroutine would be left waiting (goleak found
// one after a loaded CI run).
func (c *cluster) crash(i int) {
	c.t.Helper()
	s := c.nodes[i]
	s.batcher.close()
	require.NoError(c.t, s.raft.Shutdown().Error())
	require.NoError(c.t, s.Close(context.Background()))
}

// ensureSameHashes checks every live node reports the same hash for world at seq.
func (c *cluster) ensureSameHashes(world string) {
	c.t.Helper()
	l := c.waitLeader()
	c.waitReplicated()
	want, err := l.Hash(world, 0)
	require.NoError(c.t, err)
	for _, s := range c.nodes {
		if s == nil || s.isClosed() {
			continue
		}
		got, err := s.Hash(world, want.Seq)
		require.NoError(c.t, err)
		require.Equal(c.t, want.Hash, got.Hash, "node %s hash at seq %d", s.cfg.ID, want.Seq)
	}
}

func (s *Store) isClosed() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	return s.closed
}

func incr(world, player string, seq uint64, entity, field string, by int64) *fsm.Action {
	return &fsm.Action{World: world, Player: player, Seq: seq,
		Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: entity, Field: field, By: by}}}
}

func mustCreateWorld(t testing.TB, s *Store, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.CreateWorld(ctx, id, fsm.Rules{}))
}

func name(prefix string, i int) string { return fmt.Sprintf("%s%d", prefix, i) }

// proposedSince returns the kinds of the commands s's log holds after
// index after: a test that something was refused before proposing looks
// for its kind here, not at the log's last index, which the node's own
// entries (its address and versions record, checkpoint rounds) move.
func proposedSince(t testing.TB, s *Store, after uint64) []fsm.CmdKind {
	t.Helper()
	var kinds []fsm.CmdKind
	for i := after + 1; i <= s.raft.LastIndex(); i++ {
		var l raft.Log
		require.NoError(t, s.logStore.GetLog(i, &l))
		if l.Type != raft.LogCommand {
			continue
		}
		b, err := fsm.DecodeBatch(l.Data)
		require.NoError(t, err, "entry %d", i)
		for _, c := range b.Commands {
			kinds = append(kinds, c.Kind)
		}
	}
	return kinds
}
