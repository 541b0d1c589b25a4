package store

import (
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// mixedVersions stands for a cluster in a rolling upgrade: once downgrade
// is called one follower reads old versions, as the leader learns them
// from Config.NodeVersions, until upgrade.
type mixedVersions struct {
	oldV fsm.Versions
	mu   sync.Mutex
	old  string // the follower that reads oldV
}

func (m *mixedVersions) nodeVersions(id string) (fsm.Versions, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == m.old {
		return m.oldV, true
	}
	return fsm.Supported(), true
}

// newMixedCluster starts 3 nodes whose leader asks m which versions a
// voter reads.
func newMixedCluster(t *testing.T, oldV fsm.Versions) (*cluster, *mixedVersions) {
	m := &mixedVersions{oldV: oldV}
	c := newCluster(t, 3, func(cfg *Config) { cfg.NodeVersions = m.nodeVersions })
	return c, m
}

// downgrade makes a follower of c read m's old versions: every node
// forgets the reports it holds, so the leader asks NodeVersions.
func (m *mixedVersions) downgrade(c *cluster) {
	l := c.leader()
	for _, s := range c.nodes {
		s.reportMu.Lock()
		clear(s.reported)
		s.reportMu.Unlock()
		if s != l {
			m.mu.Lock()
			m.old = s.cfg.ID
			m.mu.Unlock()
		}
	}
}

// upgrade makes every node read the supported versions.
func (m *mixedVersions) upgrade() {
	m.mu.Lock()
	m.old = ""
	m.mu.Unlock()
}

// saltedMixedCluster is newMixedCluster whose old versions are log and
// snap, with the salted world "w" created on its leader, which it returns.
func saltedMixedCluster(t *testing.T, log, snap uint32) (*cluster, *mixedVersions, *Store) {
	t.Helper()
	old := fsm.Supported()
	old.Log, old.Snapshot = log, snap
	c, mixed := newMixedCluster(t, old)
	l := c.leader()
	require.NoError(t, l.CreateSaltedWorld(ctxT(t), "w", fsm.Rules{}))
	return c, mixed, l
}
