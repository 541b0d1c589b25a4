package store

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// A three-node group over raft.InmemTransport: no ports, no address
// provider; membership, replication and a leader change work as over TCP.
func TestClusterOverInmemTransport(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	trans := make([]*raft.InmemTransport, 3)
	for i := range trans {
		_, trans[i] = raft.NewInmemTransport("")
	}
	for _, a := range trans {
		for _, b := range trans {
			if a != b {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	// closeNode closes a node and unplugs it: an RPC to an InmemTransport
	// nobody serves (a leadership transfer to a closed node) would wait out
	// its timeout after the test.
	closeNode := func(s *Store, tr *raft.InmemTransport) error {
		err := s.Close(ctxT(t))
		for _, other := range trans {
			other.Disconnect(tr.LocalAddr())
		}
		return err
	}
	c := &cluster{t: t}
	for i, tr := range trans {
		id := "n" + strconv.Itoa(i+1)
		cfg := testConfig(t, id, filepath.Join(base, id))
		cfg.RaftAddr = ""
		cfg.Transport = tr
		cfg.Bootstrap = i == 0
		s, err := New(cfg, nil)
		require.NoError(t, err)
		require.Equal(t, string(tr.LocalAddr()), s.Self().RaftAddr, "the transport's address is advertised")
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, s)
		t.Cleanup(func() { _ = closeNode(s, tr) })
		if i == 0 {
			c.waitLeader()
			continue
		}
		require.NoError(t, c.leader().Join(ctxT(t), s.Self()))
	}
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	for seq := uint64(1); seq <= 20; seq++ {
		_, _, err := l.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	c.ensureSameHashes("arena")

	// The leader hands over on Close; the other two go on.
	require.NoError(t, closeNode(l, trans[indexOf(c, l)]))
	l2 := c.leader()
	require.NotSame(t, l, l2)
	_, _, err := l2.Act(ctxT(t), incr("arena", "p1", 21, "e1", "score", 1))
	require.NoError(t, err)
	c.ensureSameHashes("arena")
}

// Two groups run over one shard.Mux per node, as cmd/gsd will run many:
// each group replicates on its own, and one group losing its quorum does
// not stop the other.
func TestGroupsOverOneMuxPerNodeAreIndependent(t *testing.T) {
	t.Parallel()
	muxes := map[string]*shard.Mux{}
	for _, id := range []string{"n1", "n2"} {
		mc := shard.DefaultMuxConfig()
		mc.Addr = "127.0.0.1:0"
		mc.Logger = testLogger()
		m, err := shard.NewMux(mc, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		muxes[id] = m
	}
	regs := map[string]*prometheus.Registry{"n1": prometheus.NewRegistry(), "n2": prometheus.NewRegistry()} // a node's groups share one
	groups := map[uint64]*cluster{}
	for _, g := range []uint64{1, 2} {
		groups[g] = newClusterWith(t, 2, func(cfg *Config) {
			m := muxes[cfg.ID]
			l, err := m.Listen(g)
			require.NoError(t, err)
			cfg.GroupID = g
			cfg.RaftAddr = m.Addr().String()
			cfg.StreamLayer = l
		}, func(id string) prometheus.Registerer { return regs[id] })
	}
	require.Equal(t, groups[1].nodes[0].Self().RaftAddr, groups[2].nodes[0].Self().RaftAddr, "one address per node")
	for g, c := range groups {
		mustCreateWorld(t, c.leader(), "world")
		for seq := uint64(1); seq <= 5; seq++ {
			_, _, err := c.leader().Act(ctxT(t), incr("world", "p1", seq, "e1", "score", int64(g)))
			require.NoError(t, err)
		}
		c.ensureSameHashes("world")
		v, err := c.leader().Entity(ctxT(t), "world", "e1", Stale)
		require.NoError(t, err)
		require.Equal(t, 5*int64(g), v.Fields[0].Value.Int, "group %d applied only its own actions", g)
	}
	require.ElementsMatch(t, []string{"1", "2"}, keys(gaugeByGroup(t, regs["n2"], "gsd_is_leader")), "each group's metrics carry its label")

	// Group 1 loses a node, and with it its quorum of two.
	c1 := groups[1]
	follower := 1 - indexOf(c1, c1.leader())
	c1.crash(follower)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err := c1.nodes[1-follower].Act(ctx, incr("world", "p1", 6, "e1", "score", 1))
	require.Error(t, err, "group 1 has no quorum")

	c2 := groups[2]
	_, _, err = c2.leader().Act(ctxT(t), incr("world", "p1", 6, "e1", "score", 2))
	require.NoError(t, err, "group 2 goes on")
	c2.ensureSameHashes("world")
}

// A rolling upgrade: a node on the old transport (a TCP listener of its
// own) and nodes running group 0 over a shard.Mux form one cluster, and
// leadership can move between them.
func TestGroupZeroOverMuxJoinsAClusterOnPlainTCP(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, func(cfg *Config) {
		if cfg.ID == "n1" {
			return // the old binary
		}
		mc := shard.DefaultMuxConfig()
		mc.Addr = cfg.RaftAddr
		mc.Logger = testLogger()
		m, err := shard.NewMux(mc, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		cfg.StreamLayer, err = m.Listen(0)
		require.NoError(t, err)
	}, func(string) prometheus.Registerer { return nil })
	for seq := uint64(1); seq <= 3; seq++ {
		l := c.leader()
		if seq == 1 {
			mustCreateWorld(t, l, "arena")
		}
		_, _, err := l.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
		c.ensureSameHashes("arena")
		require.NoError(t, l.raft.LeadershipTransfer().Error())
	}
}

func TestStoresOfTwoGroupsShareARegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	open := func(group uint64, dir string) (*Store, error) {
		cfg := testConfig(t, "n1", dir)
		cfg.GroupID = group
		cfg.Bootstrap = true
		return New(cfg, reg)
	}
	base := t.TempDir()
	s1, err := open(1, filepath.Join(base, "g1"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s1.Close(context.Background()) })
	s2, err := open(2, filepath.Join(base, "g2"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close(context.Background()) })
	require.Eventually(t, func() bool {
		g := gaugeByGroup(t, reg, "gsd_is_leader")
		return g["1"] == 1 && g["2"] == 1
	}, 10*time.Second, 10*time.Millisecond)

	// A second Store of group 1 on the registry is an error, not a panic,
	// and leaves no Raft state behind.
	dup := filepath.Join(base, "dup")
	_, err = open(1, dup)
	require.ErrorContains(t, err, "register metrics of group 1")
	_, statErr := os.Stat(filepath.Join(dup, "raft.db"))
	require.ErrorIs(t, statErr, os.ErrNotExist)

	// A closed Store's metrics go: its group can open again.
	require.NoError(t, s1.Close(ctxT(t)))
	require.NotContains(t, gaugeByGroup(t, reg, "gsd_is_leader"), "1")
	s1, err = open(1, filepath.Join(base, "g1"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s1.Close(context.Background()) })
}

// closeCounter is a StreamLayer that only counts Close.
type closeCounter struct {
	net.Listener
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }
func (c *closeCounter) Dial(raft.ServerAddress, time.Duration) (net.Conn, error) {
	return nil, net.ErrClosed
}

func TestNewTakesOwnershipOfTheInjectedTransport(t *testing.T) {
	t.Parallel()
	t.Run("both set", func(t *testing.T) {
		cfg := testConfig(t, "n1", t.TempDir())
		layer := &closeCounter{}
		_, tr := raft.NewInmemTransport("")
		cfg.StreamLayer, cfg.Transport = layer, tr
		_, err := New(cfg, nil)
		require.ErrorContains(t, err, "set at most one")
		require.Equal(t, int32(1), layer.closed.Load(), "closed when New fails")
	})
	t.Run("no address needed", func(t *testing.T) {
		cfg := testConfig(t, "n1", t.TempDir())
		cfg.RaftAddr = ""
		require.ErrorContains(t, cfg.Validate(), "RaftAddr is required")
		_, cfg.Transport = raft.NewInmemTransport("")
		require.NoError(t, cfg.Validate())
	})
	t.Run("bad data dir", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		cfg := testConfig(t, "n1", filepath.Join(file, "dir"))
		layer := &closeCounter{}
		cfg.StreamLayer = layer
		_, err := New(cfg, nil)
		require.Error(t, err)
		require.Equal(t, int32(1), layer.closed.Load())
	})
}

// newClusterWith is newCluster with each Store's metrics on reg(its id).
func newClusterWith(t *testing.T, n int, tweak func(*Config), reg func(id string) prometheus.Registerer) *cluster {
	t.Helper()
	c := &cluster{t: t}
	base := t.TempDir()
	for i := range n {
		id := "n" + strconv.Itoa(i+1)
		cfg := testConfig(t, id, filepath.Join(base, id))
		cfg.Bootstrap = i == 0
		tweak(&cfg)
		c.cfgs = append(c.cfgs, cfg)
		s, err := New(cfg, reg(id))
		require.NoError(t, err)
		c.nodes = append(c.nodes, s)
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		if i == 0 {
			c.waitLeader()
			continue
		}
		require.Eventually(t, func() bool {
			return c.leader().Join(ctxT(t), fsm.NodeInfo{ID: cfg.ID, RaftAddr: cfg.RaftAddr, HTTPAddr: cfg.HTTPAddr}) == nil
		}, 10*time.Second, 50*time.Millisecond)
	}
	c.waitReplicated()
	return c
}

// gaugeByGroup returns a gauge's value per "group" label.
func gaugeByGroup(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[label(m, "group")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
