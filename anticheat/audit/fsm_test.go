package audit

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The node will log fsm events through Event.Wire, and the event stream
// exports json.Marshal(Event.Wire()) (api's wireCache): an export read back
// must give every event's leaf. These are the state machine's event shapes.
func TestLeavesOfStateMachineEventsSurviveTheStreamsJSON(t *testing.T) {
	evs := []fsm.Event{
		{World: "arena", Seq: 1, Index: 3, Time: 1_765_000_000_123_456_789, Player: "p1", ClientSeq: 1, Status: fsm.StatusApplied,
			Changes: []fsm.Change{
				{Entity: "p1", Field: "x", Op: fsm.OpSet, Value: wire.Float(3), Version: 1},
				{Entity: "p1", Field: "y", Op: fsm.OpSet, Value: wire.Float(-0.1), Version: 1},
				{Entity: "p1", Field: "hp", Op: fsm.OpIncr, Value: wire.Int(math.MinInt64), Version: 1},
				{Entity: "p1", Field: "name", Op: fsm.OpSet, Value: wire.String("Zoë \"z\" <\u2028>"), Version: 1},
				{Entity: "p1", Field: "big", Op: fsm.OpSet, Value: wire.Float(1e300), Version: 1},
				{Entity: "bag", Field: "items", Op: fsm.OpAdd, Value: wire.String("sword"), Version: 1},
				{Entity: "door", Field: "open", Op: fsm.OpSet, Value: wire.Bool(false), Version: 1},
			}},
		{World: "arena", Seq: 2, Player: "p2", ClientSeq: 9, Priority: fsm.PriorityBulk, Status: fsm.StatusConflict,
			Changes: []fsm.Change{
				{Entity: "bag", Field: "items", Set: []wire.Value{wire.Int(1), wire.Float(2.5), wire.String("x"), wire.Bool(true)}, Version: 4, Exists: true},
				{Entity: "gate", Field: "key", Version: 0, Exists: false},
			}},
		{World: "arena", Seq: 3, Player: "p3", Status: fsm.StatusRejected, Reason: fsm.CodeValidator},
		{World: "arena", Seq: 4, Player: "p1", Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: "p1", Op: fsm.OpDelete, Version: 7}}},
	}
	for i := range evs {
		w := evs[i].Wire()
		b, err := json.Marshal(evs[i])
		require.NoError(t, err)
		var back wire.Event
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, LeafHash(&w), LeafHash(&back), "seq %d: %s", evs[i].Seq, b)
	}
}
