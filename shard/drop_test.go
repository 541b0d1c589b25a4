package shard

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A dropped group is stopped and its data deleted, so opening it again
// starts with no Raft state; the membership and meta groups are never
// dropped.
func TestDropGroupDeletesTheGroupsData(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	st, err := m.Open(3, GroupOptions{Bootstrap: true})
	require.NoError(t, err)
	waitLeader(t, st)
	mustCreateWorld(t, st, "w")
	require.True(t, m.HasGroupData(3))

	require.ErrorContains(t, m.DropGroup(ctx, 0), "never dropped")
	require.ErrorContains(t, m.DropGroup(ctx, MetaGroup), "never dropped")
	require.NoError(t, m.DropGroup(ctx, 3))
	_, runs := m.Group(3)
	require.False(t, runs)
	require.False(t, m.HasGroupData(3))
	require.ErrorIs(t, m.DropGroup(ctx, 3), ErrUnknownGroup)

	// Opened again without bootstrap, it has no state: no leader, no world.
	again, err := m.Open(3, GroupOptions{})
	require.NoError(t, err)
	require.Empty(t, again.Worlds())
	servers, err := again.Members()
	require.NoError(t, err)
	require.Empty(t, servers, "no configuration: it waits to be added")
}
