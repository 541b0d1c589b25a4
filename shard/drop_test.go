package shard

import (
	"context"
	"path/filepath"
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

// A group's data set aside moves to a sibling directory, kept, and the
// group opens clean; a running group, or a bad suffix, is refused.
func TestSetAsideMovesTheGroupsDataToASibling(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	to, err := m.SetAside(3, "old")
	require.NoError(t, err)
	require.Empty(t, to, "no directory: nothing to set aside")

	st, err := m.Open(3, GroupOptions{Bootstrap: true})
	require.NoError(t, err)
	waitLeader(t, st)
	mustCreateWorld(t, st, "w")
	_, err = m.SetAside(3, "old")
	require.ErrorIs(t, err, ErrGroupTaken, "a running group is never moved")
	require.NoError(t, m.CloseGroup(ctx, 3))
	_, err = m.SetAside(3, "../x")
	require.ErrorContains(t, err, "bad suffix")

	to, err = m.SetAside(3, "old")
	require.NoError(t, err)
	require.Equal(t, m.DataDir(3)+".old", to)
	require.FileExists(t, filepath.Join(to, "raft.db"))
	require.False(t, m.HasGroupData(3))

	again, err := m.Open(3, GroupOptions{})
	require.NoError(t, err)
	require.Empty(t, again.Worlds(), "opened clean")
	require.NoError(t, m.CloseGroup(ctx, 3))
	to, err = m.SetAside(3, "old")
	require.NoError(t, err)
	require.Equal(t, m.DataDir(3)+".old.2", to, "the first is kept")
}
