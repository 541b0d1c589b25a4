package wire

import (
	"encoding/json"
	"testing"

	"github.com/gsd-dev/gsd/internal/golden"
	"github.com/stretchr/testify/require"
)

func ptr[T any](v T) *T { return &v }

// leafEvent is an event with every part the leaf commits to.
func leafEvent() Event {
	return Event{
		World: "arena", Seq: 300, Index: 9, Time: -2, Player: "p1", ClientSeq: 7,
		Priority: PriorityNameCritical, Status: StatusConflict, Reason: "r",
		Versions: map[string]map[string]uint64{"door": {"open": 3}, "box": {"n": 2, "hp": 1}},
		Changes: []Change{
			{Entity: "box", Field: "hp", Op: "set", Value: ptr(Int(5)), Version: 1, Exists: ptr(true)},
			{Entity: "box", Field: "n", Value: ptr(Float(1.5)), Version: 2, Exists: ptr(false)},
			{Entity: "door", Field: "open", Op: "add", Set: []Value{Bool(true), Bool(false), String("x"), {}}, Version: 3},
		},
	}
}

func TestAuditLeafV1BytesAreFrozen(t *testing.T) {
	// Spelled out by hand from the layout in AppendAuditLeaf's doc comment.
	minimal := []byte{
		0x01,      // version
		0x01, 'w', // world
		0x05,                                         // seq 5
		0x03,                                         // time -2, zigzag
		0x00,                                         // player ""
		0x00,                                         // client seq
		0x08, 'c', 'r', 'i', 't', 'i', 'c', 'a', 'l', // priority
		0x07, 'a', 'p', 'p', 'l', 'i', 'e', 'd', // status
		0x00, // reason
		0x00, // no versions
		0x00, // no changes
	}
	e := Event{World: "w", Seq: 5, Index: 77, Time: -2, Priority: "critical", Status: "applied", Duplicate: true}
	require.Equal(t, minimal, AppendAuditLeaf(nil, &e))

	// One entity, one field: the common case.
	one := Event{World: "w", Seq: 1, Priority: "bulk", Status: "applied", Versions: map[string]map[string]uint64{"e": {"f": 300}}}
	require.Equal(t, []byte{
		0x01, 0x01, 'w', 0x01, 0x00, 0x00, 0x00,
		0x04, 'b', 'u', 'l', 'k',
		0x07, 'a', 'p', 'p', 'l', 'i', 'e', 'd',
		0x00,
		0x01, 0x01, 'e', 0x01, 0x01, 'f', 0xac, 0x02, // versions: e: f: 300
		0x00,
	}, AppendAuditLeaf(nil, &one))

	full := leafEvent()
	golden.Binary(t, "audit_leaf_v1.bin", AppendAuditLeaf(nil, &full))
}

func TestAuditLeafAppendsToItsBuffer(t *testing.T) {
	e := leafEvent()
	got := AppendAuditLeaf([]byte("prefix"), &e)
	require.Equal(t, append([]byte("prefix"), AppendAuditLeaf(nil, &e)...), got)
}

func TestAuditLeafOfAnEventReadBackFromJSONIsTheSame(t *testing.T) {
	e := leafEvent()
	// An integral float reads back from JSON as an int: the leaf agrees.
	e.Changes = append(e.Changes, Change{Entity: "f", Field: "x", Value: ptr(Float(4)), Set: []Value{Float(1e21), Float(123456789)}, Version: 4})
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var back Event
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, AppendAuditLeaf(nil, &e), AppendAuditLeaf(nil, &back))
}

func TestAuditLeafIgnoresIndexAndDuplicateAndMapOrder(t *testing.T) {
	e := leafEvent()
	want := AppendAuditLeaf(nil, &e)
	e.Index, e.Duplicate = 1000, true
	e.Versions = map[string]map[string]uint64{"box": {"hp": 1, "n": 2}, "door": {"open": 3}}
	require.Equal(t, want, AppendAuditLeaf(nil, &e))
	// A null value and no value are one thing in JSON, so in the leaf.
	e.Changes[2].Value = &Value{}
	require.Equal(t, want, AppendAuditLeaf(nil, &e))
	// A kind with no JSON form is null, as MarshalJSON writes it.
	e.Changes[2].Value = &Value{Kind: Kind(9)}
	require.Equal(t, want, AppendAuditLeaf(nil, &e))
}

func TestAuditLeafChangesWithEveryPartItCommitsTo(t *testing.T) {
	base := leafEvent()
	want := AppendAuditLeaf(nil, &base)
	edits := map[string]func(e *Event){
		"world":          func(e *Event) { e.World = "arena2" },
		"seq":            func(e *Event) { e.Seq++ },
		"time":           func(e *Event) { e.Time++ },
		"player":         func(e *Event) { e.Player = "p2" },
		"client seq":     func(e *Event) { e.ClientSeq++ },
		"priority":       func(e *Event) { e.Priority = PriorityNameBulk },
		"status":         func(e *Event) { e.Status = StatusApplied },
		"reason":         func(e *Event) { e.Reason = "s" },
		"version":        func(e *Event) { e.Versions["door"]["open"] = 4 },
		"version entity": func(e *Event) { e.Versions["wall"] = map[string]uint64{} },
		"change entity":  func(e *Event) { e.Changes[0].Entity = "bag" },
		"change field":   func(e *Event) { e.Changes[0].Field = "mp" },
		"change op":      func(e *Event) { e.Changes[0].Op = "incr" },
		"int to string":  func(e *Event) { e.Changes[0].Value = ptr(String("5")) },
		"int value":      func(e *Event) { e.Changes[0].Value = ptr(Int(6)) },
		"float value":    func(e *Event) { e.Changes[1].Value = ptr(Float(1.25)) },
		"value removed":  func(e *Event) { e.Changes[0].Value = nil },
		"bool flipped":   func(e *Event) { e.Changes[2].Set[0] = Bool(false) },
		"set element":    func(e *Event) { e.Changes[2].Set = e.Changes[2].Set[:3] },
		"change version": func(e *Event) { e.Changes[2].Version = 9 },
		"exists flipped": func(e *Event) { e.Changes[0].Exists = ptr(false) },
		"exists dropped": func(e *Event) { e.Changes[1].Exists = nil },
		"change dropped": func(e *Event) { e.Changes = e.Changes[:2] },
		"changes swapped": func(e *Event) {
			e.Changes[0], e.Changes[1] = e.Changes[1], e.Changes[0]
		},
	}
	for name, edit := range edits {
		e := leafEvent()
		edit(&e)
		require.NotEqual(t, want, AppendAuditLeaf(nil, &e), name)
	}
}
