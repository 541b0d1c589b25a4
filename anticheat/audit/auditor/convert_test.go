package auditor

import (
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// shapes are events of every kind the leaf distinguishes: statuses,
// ops, null and set values, deletes, several entities, no changes.
func shapes(world string, seq uint64) []*fsm.Event {
	ev := func(st fsm.Status, reason string, chs ...fsm.Change) *fsm.Event {
		seq++
		return &fsm.Event{World: world, Seq: seq, Index: seq + 7, Time: int64(seq) * 1000, Player: fmt.Sprintf("p%d", seq%4),
			ClientSeq: seq / 2, Priority: fsm.PriorityCritical + fsm.Priority(seq%2), Status: st, Reason: reason, Changes: chs}
	}
	return []*fsm.Event{
		ev(fsm.StatusApplied, "", fsm.Change{Entity: "a", Field: "hp", Op: fsm.OpSet, Value: fsm.Int(3), Version: 1}),
		ev(fsm.StatusApplied, "", fsm.Change{Entity: "b", Field: "n", Op: fsm.OpIncr, Value: fsm.Float(2.5), Version: 2},
			fsm.Change{Entity: "a", Field: "name", Op: fsm.OpSet, Value: fsm.String("x"), Version: 2},
			fsm.Change{Entity: "a", Field: "hp", Op: fsm.OpSet, Value: fsm.Bool(true), Version: 2}),
		ev(fsm.StatusRejected, "validator"),
		ev(fsm.StatusConflict, "", fsm.Change{Entity: "c", Field: "tags", Set: []fsm.Value{fsm.String("k"), fsm.String("q")}, Version: 4, Exists: true},
			fsm.Change{Entity: "d", Field: "hp", Version: 0, Exists: false}),
		ev(fsm.StatusApplied, "", fsm.Change{Entity: "a", Op: fsm.OpDelete, Version: 5}),
		ev(fsm.StatusApplied, "", fsm.Change{Entity: "c", Field: "tags", Op: fsm.OpAdd, Value: fsm.String("z"), Version: 6},
			fsm.Change{Entity: "e", Field: "tags", Op: fsm.OpRemove, Value: fsm.String("k"), Version: 6}),
	}
}

func TestConvertedEventsHaveTheLeavesOfTheirWireForm(t *testing.T) {
	var c converter
	// Batches of other shapes and sizes in turn, so that every slot is
	// reused by events of other entities, statuses and change counts.
	all := shapes("arena", 0)
	for round := range 12 {
		evs := append([]*fsm.Event(nil), all[round%len(all):]...)
		evs = append(evs, all[:round%len(all)]...)
		evs = evs[:len(evs)-round%3]
		got := c.convert(evs)
		require.Len(t, got, len(evs))
		for i, e := range evs {
			w := e.Wire()
			require.Equal(t, wire.AppendAuditLeaf(nil, &w), wire.AppendAuditLeaf(nil, got[i]), "round %d, seq %d", round, e.Seq)
		}
	}
}
