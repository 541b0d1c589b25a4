package shard

import (
	"context"
	"io"
	"testing"

	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// A group's backup comes from this node only when it leads the group:
// another node's group, or a group it follows, answers not-leader so that a
// client asks the next node.
func TestBackendBacksUpAGroupOnlyOnItsLeader(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1", "n2"}}, {ID: 2, Voters: []string{"n1", "n2"}}, {ID: 3, Voters: []string{"n2"}}},
		Worlds:     map[string]uint64{"wa": 1, "wb": 2, "wc": 3},
	})
	node, st := c.leader("wb")
	mustCreateWorld(t, st, "wb")
	c.act("wb", 1)
	other := "n1"
	if node == "n1" {
		other = "n2"
	}
	lead, err := NewBackend(c.routers[node])
	require.NoError(t, err)
	b, err := lead.BackupGroup(context.Background(), 2)
	require.NoError(t, err)
	data, err := io.ReadAll(b.Body)
	require.NoError(t, err)
	require.NoError(t, b.Body.Close())
	require.Equal(t, b.Size, int64(len(data)))
	require.NotZero(t, b.Index)

	follow, err := NewBackend(c.routers[other])
	require.NoError(t, err)
	_, err = follow.BackupGroup(context.Background(), 2)
	require.ErrorIs(t, err, store.ErrNotLeader)
	n1, err := NewBackend(c.routers["n1"])
	require.NoError(t, err)
	_, err = n1.BackupGroup(context.Background(), 3)
	require.ErrorIs(t, err, store.ErrNotLeader)
	require.ErrorIs(t, err, ErrUnknownGroup)
}
