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

// Every voter of a group formed from a static shard map bootstraps with
// the same Voters: one group, one leader, all replicas apply the same.
func TestVotersBootstrapOneGroupOnEveryVoter(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	trans := make([]*raft.InmemTransport, 3)
	var voters []raft.Server
	for i := range trans {
		_, trans[i] = raft.NewInmemTransport("")
		voters = append(voters, raft.Server{ID: raft.ServerID("n" + strconv.Itoa(i+1)), Address: trans[i].LocalAddr()})
	}
	for _, a := range trans {
		for _, b := range trans {
			if a != b {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	c := &cluster{t: t}
	for i, tr := range trans {
		cfg := testConfig(t, string(voters[i].ID), filepath.Join(base, string(voters[i].ID)))
		cfg.RaftAddr, cfg.Transport, cfg.Bootstrap, cfg.Voters = "", tr, true, voters
		s, err := New(cfg, nil)
		require.NoError(t, err)
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, s)
	}
	t.Cleanup(func() {
		for i, s := range c.nodes {
			_ = s.Close(context.Background())
			for _, other := range trans {
				other.Disconnect(trans[i].LocalAddr())
			}
		}
	})
	l := c.leader()
	require.Equal(t, 3, l.voters())
	mustCreateWorld(t, l, "arena")
	_, _, err := l.Act(ctxT(t), incr("arena", "p1", 1, "e1", "score", 1))
	require.NoError(t, err)
	c.ensureSameHashes("arena")

	cfg := testConfig(t, "n4", t.TempDir())
	cfg.Voters = voters
	require.ErrorContains(t, cfg.Validate(), "does not name this node")
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
