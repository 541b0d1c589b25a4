package shard

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// Other nodes refill their archives from each world's group on this node;
// the node's archive status is its membership group's.
func TestBackendServesEachWorldsArchiveFromItsGroup(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1"}}, {ID: 3, Voters: []string{"n2"}}},
		Worlds:     map[string]uint64{"wa": 1, "wb": 2, "wc": 3},
	})
	b, err := NewBackend(c.routers["n1"])
	require.NoError(t, err)
	_, st := c.leader("wb")
	mustCreateWorld(t, st, "wb")
	ev := c.act("wb", 1)
	first, recs, err := b.ArchiveRecords("wb", ev.Seq, 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, ev.Seq, first)
	require.Len(t, recs, 1)
	got, err := fsm.DecodeEvent(recs[0])
	require.NoError(t, err)
	require.Equal(t, "wb", got.World)
	_, _, err = b.ArchiveRecords("wc", 1, 10, 1<<20)
	require.ErrorIs(t, err, ErrUnknownGroup)

	missing, err := b.CheckArchive()
	require.NoError(t, err)
	require.Empty(t, missing)
	require.False(t, b.ArchiveStatus().Checked.IsZero())
	b.RefillNow() // no refiller runs: nothing waits on it
}
