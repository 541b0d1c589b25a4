package shard

import (
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// Other nodes refill their archives from each world's group on this node,
// or from the group they name; the node's archive status adds up every
// group's.
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

	first, named, err := b.GroupArchiveRecords(2, "wb", ev.Seq, 10, 1<<20)
	require.NoError(t, err)
	require.Equal(t, ev.Seq, first)
	require.Equal(t, recs, named, "group 2's replica, named")
	_, none, err := b.GroupArchiveRecords(1, "wb", ev.Seq, 10, 1<<20)
	require.NoError(t, err)
	require.Empty(t, none, "group 1 holds no event of wb")
	_, _, err = b.GroupArchiveRecords(3, "wc", 1, 10, 1<<20)
	require.ErrorIs(t, err, ErrUnknownGroup)
	require.ErrorIs(t, err, fsm.ErrNotSupported, "answered not_supported: the asker asks the group's other voters")

	missing, err := b.CheckArchive()
	require.NoError(t, err)
	require.Empty(t, missing)
	st0 := b.ArchiveStatus()
	require.False(t, st0.Checked.IsZero())
	require.Equal(t, []store.Range{}, st0.Missing)
	require.Empty(t, st0.Error)
	b.RefillNow() // no refiller runs: nothing waits on it
}

// The node's archive status adds every group's up: ranges, counts, the
// oldest check, and each group's error after its id.
func TestArchiveStatusAddsEveryGroupsUp(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	sum := store.ArchiveStatus{Missing: []store.Range{}}
	sum = addArchiveStatus(sum, true, 0, store.ArchiveStatus{Missing: []store.Range{}, Refilled: 3, Verified: map[string]uint64{"audit": 3}, Checked: t0.Add(time.Second)})
	sum = addArchiveStatus(sum, false, 1, store.ArchiveStatus{Missing: []store.Range{{World: "a", From: 1, To: 4}}, MissingEvents: 4,
		Refilled: 5, Refused: 2, Verified: map[string]uint64{"two_peers": 5}, Checked: t0, Error: "no peer"})
	sum = addArchiveStatus(sum, false, 2, store.ArchiveStatus{Checked: t0.Add(time.Minute), Error: "down"})
	require.Equal(t, store.ArchiveStatus{
		Missing:       []store.Range{{World: "a", From: 1, To: 4}},
		MissingEvents: 4, Refilled: 8, Refused: 2,
		Verified: map[string]uint64{"audit": 3, "two_peers": 5},
		Checked:  t0,
		Error:    "group 1: no peer; group 2: down",
	}, sum)
}

// The summed check time is the same whichever order the groups come in:
// the oldest, or zero when a group has never been checked (a group just
// opened here): the node's archive has not been checked as a whole.
func TestArchiveStatusCheckedDoesNotDependOnTheGroupsOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	sumOf := func(checks ...time.Time) time.Time {
		sum := store.ArchiveStatus{}
		for i, c := range checks {
			sum = addArchiveStatus(sum, i == 0, uint64(i), store.ArchiveStatus{Checked: c})
		}
		return sum.Checked
	}
	later := t0.Add(time.Minute)
	for _, order := range [][]time.Time{{t0, later}, {later, t0}} {
		require.Equal(t, t0, sumOf(order...))
	}
	for _, order := range [][]time.Time{{{}, t0, later}, {t0, {}, later}, {t0, later, {}}} {
		require.True(t, sumOf(order...).IsZero(), "a group never checked: %v", order)
	}
	require.True(t, sumOf().IsZero())
}
