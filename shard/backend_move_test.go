package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// After a world moved between two groups of this node, the old group keeps
// its fenced copy until it is dropped (shard.Move's doc), and the new one
// holds the import. The node's world list must still name the world once,
// as World reads it: from the group the map places it on, fenced while
// the map is not updated yet, live once it is. Callers key by id (the play
// service's fence check, rules and visibility caches, the hash guard): a
// second, fenced copy closes every play connection of the world at its
// new home with world_moved, and its rules (stale after a rules change at
// the new home) can stand in for the world's.
func TestBackendListsAMovedWorldOnceFromTheGroupItLivesOn(t *testing.T) {
	for _, placed := range []uint64{1, 2} { // the map before and after its update
		c := newShardCluster(t, 1, Map{
			Membership: 1,
			Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1"}}},
			Worlds:     map[string]uint64{"arena": placed},
		})
		src, ok := c.mgrs["n1"].Group(1)
		require.True(t, ok)
		dst, ok := c.mgrs["n1"].Group(2)
		require.True(t, ok)
		waitLeader(t, src)
		waitLeader(t, dst)
		mustCreateWorld(t, src, "arena") // where it lived before the move
		act(t, src, incr("arena", "p1", 1, "e1"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.mgrs["n1"].MoveWorld(ctx, "arena", 1, 2, nil)
		cancel()
		require.NoError(t, err)

		b, err := NewBackend(c.routers["n1"])
		require.NoError(t, err)
		home, err := b.World("arena")
		require.NoError(t, err)
		require.Equal(t, placed == 1, home.Moved != nil, "placed on %d", placed)
		var listed []fsm.WorldInfo
		for _, wi := range b.Worlds() {
			if wi.ID == "arena" {
				listed = append(listed, wi)
			}
		}
		require.Equal(t, []fsm.WorldInfo{home}, listed, "placed on %d: the moved world is listed once, as World reads it", placed)
	}
}
