package play

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// The hub picks a batch's events for a member by where their entities
// stand at the batch's end (interestIndex.plan after update): an entity
// that walks into a member's area and out again within one batch sends it
// neither its walk-in event nor an enter (only a leave naming it), on its
// cell's stream and on its own offers alike, while the same events in two batches send it the
// walk-in event with an enter, then a leave. This is what the client's
// TestPlayEnterSnapshotsReachNext met whenever the store handed the hub
// its actions 3 to 5 in one batch, before and after cells11b; a member's
// stream depends on how the events were batched, never on whether it is a
// cell member.
func TestAWalkInAndOutWithinOneBatchIsFilteredByWhereTheEntityEnds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		batches   [][]int // the events 3, 4, 5 by batch
		events    []uint64
		areas     []string
		ownOffers bool
	}{
		{name: "cell stream, one batch", batches: [][]int{{3, 4, 5}}, events: []uint64{5}, areas: []string{"leave [gem]"}},
		{name: "own offers, one batch", batches: [][]int{{3, 4, 5}}, events: []uint64{5}, areas: []string{"leave [gem]"}, ownOffers: true},
		{name: "cell stream, two batches", batches: [][]int{{3}, {4, 5}}, events: []uint64{3, 5}, areas: []string{"enter <nil> [gem]", "leave [gem]"}},
		{name: "own offers, two batches", batches: [][]int{{3}, {4, 5}}, events: []uint64{3, 5}, areas: []string{"enter <nil> [gem]", "leave [gem]"}, ownOffers: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := verEntities{}
			state.set("ann", "x", fsm.Int(5), 1)
			state.set("ann", "y", fsm.Int(5), 1)
			state.set("gem", "x", fsm.Int(95), 2)
			state.set("gem", "y", fsm.Int(6), 1)
			h, conns := cellsHubOver(t, state.lookup, []string{"ann", "gem"}, 1, "ann")
			h.ownOffers = tc.ownOffers
			ann := conns["ann"]
			h.tick()
			if tc.ownOffers {
				require.Nil(t, h.cellOf(ann))
			} else {
				require.NotNil(t, h.cellOf(ann), "ann reads its cell's stream")
			}
			ev := map[int]*fsm.Event{
				3: {Seq: 3, World: "w", Player: "gm", Status: fsm.StatusApplied, Priority: fsm.PriorityCritical,
					Changes: []fsm.Change{{Entity: "gem", Field: "x", Op: fsm.OpSet, Value: fsm.Int(6), Version: 3}}},
				4: {Seq: 4, World: "w", Player: "gm", Status: fsm.StatusApplied, Priority: fsm.PriorityCritical,
					Changes: []fsm.Change{{Entity: "gem", Field: "x", Op: fsm.OpSet, Value: fsm.Int(95), Version: 4}}},
				5: {Seq: 5, World: "w", Player: "gm", Status: fsm.StatusApplied, Priority: fsm.PriorityCritical,
					Changes: []fsm.Change{{Entity: "ann", Field: "hp", Op: fsm.OpSet, Value: fsm.Int(1), Version: 5}}},
			}
			cl := &cellClient{fields: map[string]map[string]verValue{}}
			for _, b := range tc.batches {
				var evs []*fsm.Event
				for _, s := range b {
					c := ev[s].Changes[0]
					state.set(c.Entity, c.Field, c.Value, c.Version)
					evs = append(evs, ev[s])
				}
				hevs, err := h.s.prepare(evs, true)
				require.NoError(t, err)
				h.fanout(evs, hevs)
				cl.read(t, mustTakeT(t, ann.ob))
			}
			require.Equal(t, tc.events, cl.events, "ann's critical events")
			require.Equal(t, tc.areas, cl.areas, "ann's enters and leaves")
			require.NotContains(t, cl.fields, "gem", "gem ends outside ann's area")
		})
	}
}
