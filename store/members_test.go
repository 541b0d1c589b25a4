package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// A shard's leader changes its Raft configuration without the node
// table: a nonvoter, promoted, then removed; a follower refuses.
func TestMembersChangeTheConfigurationWithoutTheNodeTable(t *testing.T) {
	// n2 reports to the membership group, whose table answers here.
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.NodeVersions = func(string) (fsm.Versions, bool) { return fsm.Supported(), true }
	})
	l := c.leader()
	cfg := testConfig(t, "n2", filepath.Join(t.TempDir(), "n2"))
	n2, err := New(cfg, nil) // no bootstrap: it waits to be added
	require.NoError(t, err)
	t.Cleanup(func() { _ = n2.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	suffrage := func(s *Store, id string) (raft.ServerSuffrage, bool) {
		servers, err := s.Members()
		require.NoError(t, err)
		for _, srv := range servers {
			if string(srv.ID) == id {
				return srv.Suffrage, true
			}
		}
		return 0, false
	}
	require.NoError(t, l.AddNonvoter(ctx, "n2", cfg.RaftAddr))
	sf, ok := suffrage(l, "n2")
	require.True(t, ok)
	require.Equal(t, raft.Nonvoter, sf)
	require.Eventually(t, func() bool { return n2.CommitIndex() >= l.LastIndex() && n2.LastIndex() > 0 },
		10*time.Second, 5*time.Millisecond, "n2 catches up")
	require.ErrorIs(t, n2.AddNonvoter(ctx, "n3", "127.0.0.1:1"), ErrNotLeader)
	require.ErrorIs(t, n2.PromoteVoter(ctx, "n2", cfg.RaftAddr), ErrNotLeader)
	require.ErrorIs(t, n2.RemoveMember(ctx, "n1"), ErrNotLeader)

	require.NoError(t, l.PromoteVoter(ctx, "n2", cfg.RaftAddr))
	sf, _ = suffrage(l, "n2")
	require.Equal(t, raft.Voter, sf)
	_, inTable := l.fsm.Node("n2")
	require.False(t, inTable, "the node table is the membership group's")

	require.NoError(t, l.RemoveMember(ctx, "n2"))
	_, ok = suffrage(l, "n2")
	require.False(t, ok)
}
