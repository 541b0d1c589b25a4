package fsm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewRejectsInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Window: 1023, HashHistory: 1},
		{Window: 1024 + 32, HashHistory: 1},
		{Window: 1024, HashHistory: 0},
		{},
	} {
		f, err := New(cfg)
		require.Error(t, err, "%+v", cfg)
		require.Nil(t, f)
	}
	require.NoError(t, DefaultConfig().Validate())
	require.Equal(t, Config{Window: 1024, HashHistory: 4096}, DefaultConfig())
}

func TestCreateWorldRejectsBadNamesBadRulesAndDuplicates(t *testing.T) {
	h := newHarness(t)
	res := h.apply(
		cmdWorld("arena", Rules{}),
		cmdWorld("", Rules{}),
		cmdWorld(strings.Repeat("w", MaxNameLen+1), Rules{}),
		cmdWorld("bad", rules(false, map[string]FieldRule{"hp": {Type: KindString, Policy: PolicyCounter}})),
		cmdWorld("arena", rules(true, nil)),
	)
	require.NoError(t, res[0].Err)
	require.ErrorIs(t, res[1].Err, ErrMalformed)
	require.ErrorIs(t, res[2].Err, ErrMalformed)
	require.ErrorIs(t, res[3].Err, ErrMalformed)
	require.ErrorIs(t, res[4].Err, ErrWorldExists)
	require.Equal(t, CodeWorldExists, Code(res[4].Err))
	ws := h.f.Worlds()
	require.Len(t, ws, 1)
	require.Equal(t, "arena", ws[0].ID)
	require.False(t, ws[0].Rules.Strict, "the duplicate create did not replace the rules")
}

func TestEventCarriesLeaderTimeIndexAndClientFields(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	a := &Action{World: "w", Player: "ann", Seq: 41, InputTime: 5, Priority: PriorityBulk, Ops: []Op{opIncr("e", "c", 1)}}
	ev := h.event(a)
	require.Equal(t, Event{
		World: "w", Seq: 1, Index: h.index, Time: h.time, Player: "ann", ClientSeq: 41, Priority: PriorityBulk,
		Status:  StatusApplied,
		Changes: []Change{{Entity: "e", Field: "c", Op: OpIncr, Value: Int(1), Version: 1}},
	}, *ev)
	require.Equal(t, map[string]map[string]uint64{"e": {"c": 1}}, ev.Versions())
	require.Equal(t, h.index, h.f.AppliedIndex())
}

func TestWorldSeqRisesByOnePerActionAcrossBatches(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.createWorld("v", Rules{})
	res := h.apply(
		cmdAction(act("w", "a", 1, opIncr("e", "c", 1))),
		cmdAction(act("v", "a", 1, opIncr("e", "c", 1))),
		cmdAction(act("w", "b", 1, opIncr("e", "c", 1))),
		cmdAction(act("w", "b", 2, opSet("e", "c", Int(1)))), // rejected, still numbered
	)
	require.Equal(t, []uint64{1, 1, 2, 3}, []uint64{res[0].Event.Seq, res[1].Event.Seq, res[2].Event.Seq, res[3].Event.Seq})
	require.Equal(t, StatusRejected, res[3].Event.Status)
	require.Equal(t, uint64(4), h.event(act("w", "a", 2, opIncr("e", "c", 1))).Seq)
	require.Equal(t, uint64(3), h.worldSeq("v")+2)
}

func TestAuthoritativeSetLastWriterWinsByLogOrder(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	res := h.apply(
		cmdAction(act("w", "ann", 1, opSet("door", "owner", String("ann")))),
		cmdAction(act("w", "bob", 1, opSet("door", "owner", String("bob")))),
	)
	require.Equal(t, StatusApplied, res[0].Event.Status)
	require.Equal(t, StatusApplied, res[1].Event.Status)
	require.Equal(t, FieldView{Name: "owner", Policy: PolicyAuthoritative, Value: String("bob"), Version: 2}, h.field("w", "door", "owner"))
	// Setting the same value again is still a write: the version moves.
	ev := h.event(act("w", "ann", 2, opSet("door", "owner", String("bob"))))
	require.Equal(t, []Change{{Entity: "door", Field: "owner", Op: OpSet, Value: String("bob"), Version: 3}}, ev.Changes)
}

func TestCounterIncrAddsPositiveAndNegativeDeltas(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}))
	var last *Event
	for i, by := range []int64{5, -3, 10, -20} {
		last = h.event(act("w", "p", uint64(i+1), opIncr("e", "hp", by)))
	}
	require.Equal(t, []Change{{Entity: "e", Field: "hp", Op: OpIncr, Value: Int(-8), Version: 4}}, last.Changes)
	require.Equal(t, FieldView{Name: "hp", Policy: PolicyCounter, Value: Int(-8), Version: 4}, h.field("w", "e", "hp"))
}

func TestSeveralOpsOnOneFieldInOneActionAllApply(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	ev := h.event(act("w", "p", 1, opIncr("e", "c", 2), opIncr("e", "c", 3), opAdd("e", "s", Int(1)), opAdd("e", "s", Int(2))))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, Int(5), h.field("w", "e", "c").Value)
	require.Equal(t, []Value{Int(1), Int(2)}, h.field("w", "e", "s").Set)
}

func TestSetFieldAddAndRemoveActAsAnORSet(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{"tags": {Type: KindString, Policy: PolicySet}}))
	ev := h.event(act("w", "p", 1, opAdd("e", "tags", String("b")), opAdd("e", "tags", String("a"))))
	require.Equal(t, []Change{
		{Entity: "e", Field: "tags", Op: OpAdd, Value: String("b"), Version: 1},
		{Entity: "e", Field: "tags", Op: OpAdd, Value: String("a"), Version: 1},
	}, ev.Changes)
	require.Equal(t, FieldView{Name: "tags", Policy: PolicySet, Set: []Value{String("a"), String("b")}, Version: 1}, h.field("w", "e", "tags"))

	// Adding a present element or removing an absent one changes nothing visible.
	ev = h.event(act("w", "p", 2, opAdd("e", "tags", String("a"))))
	require.Equal(t, uint64(1), ev.Changes[0].Version)
	ev = h.event(act("w", "p", 3, opRemove("e", "tags", String("zzz"))))
	require.Equal(t, uint64(1), ev.Changes[0].Version)
	require.Equal(t, uint64(1), h.field("w", "e", "tags").Version)

	ev = h.event(act("w", "p", 4, opRemove("e", "tags", String("a"))))
	require.Equal(t, []Change{{Entity: "e", Field: "tags", Op: OpRemove, Value: String("a"), Version: 4}}, ev.Changes)
	require.Equal(t, []Value{String("b")}, h.field("w", "e", "tags").Set)

	// A removed element can come back.
	h.event(act("w", "p", 5, opAdd("e", "tags", String("a"))))
	require.Equal(t, FieldView{Name: "tags", Policy: PolicySet, Set: []Value{String("a"), String("b")}, Version: 5}, h.field("w", "e", "tags"))
}

func TestFirstRemoveOnAFieldCreatesAnEmptySet(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	ev := h.event(act("w", "p", 1, opRemove("e", "tags", Int(4))))
	require.Equal(t, StatusApplied, ev.Status)
	fv := h.field("w", "e", "tags")
	require.Equal(t, PolicySet, fv.Policy)
	require.Empty(t, fv.Set)
	require.Equal(t, uint64(1), fv.Version)
	require.Equal(t, []any{}, fv.Plain())
}

func TestMaxFieldKeepsTheLargestAndBumpsVersionOnlyOnChange(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{"best": {Type: KindInt, Policy: PolicyMax}}))
	steps := []struct {
		set     int64
		want    int64
		version uint64
	}{{5, 5, 1}, {3, 5, 1}, {9, 9, 3}, {9, 9, 3}, {-100, 9, 3}, {10, 10, 6}}
	for i, s := range steps {
		ev := h.event(act("w", "p", uint64(i+1), opSet("e", "best", Int(s.set))))
		require.Equal(t, []Change{{Entity: "e", Field: "best", Op: OpSet, Value: Int(s.want), Version: s.version}}, ev.Changes, "step %d", i)
	}
	require.Equal(t, FieldView{Name: "best", Policy: PolicyMax, Value: Int(10), Version: 6}, h.field("w", "e", "best"))
}

func TestMinFieldKeepsTheSmallestAndBumpsVersionOnlyOnChange(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{"first": {Type: KindString, Policy: PolicyMin}}))
	steps := []struct {
		set, want string
		version   uint64
	}{{"m", "m", 1}, {"z", "m", 1}, {"c", "c", 3}, {"c", "c", 3}, {"a", "a", 5}}
	for i, s := range steps {
		ev := h.event(act("w", "p", uint64(i+1), opSet("e", "first", String(s.set))))
		require.Equal(t, []Change{{Entity: "e", Field: "first", Op: OpSet, Value: String(s.want), Version: s.version}}, ev.Changes, "step %d", i)
	}
}

func TestMaxFloatFieldComparesCoercedIntLiterals(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{"speed": {Type: KindFloat, Policy: PolicyMax}}))
	h.event(act("w", "p", 1, opSet("e", "speed", Float(2.5))))
	h.event(act("w", "p", 2, opSet("e", "speed", Int(2))))
	require.Equal(t, Float(2.5), h.field("w", "e", "speed").Value)
	h.event(act("w", "p", 3, opSet("e", "speed", Int(3))))
	require.Equal(t, FieldView{Name: "speed", Policy: PolicyMax, Value: Float(3), Version: 3}, h.field("w", "e", "speed"))
}

func TestDeleteRemovesTheEntityAndItsExpectChecksTheEntityVersion(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	empty := h.hash("w")
	h.event(act("w", "p", 1, opSet("crate", "x", Int(1))))
	h.event(act("w", "p", 2, opSet("crate", "y", Int(2))))
	h.event(act("w", "p", 3, opSet("other", "x", Int(1))))
	withOther := h.hash("w")
	require.Equal(t, uint64(2), h.entity("w", "crate").Version)

	// The entity version is the largest field version: 2, not 1.
	ev := h.event(act("w", "p", 4, withExpect(opDelete("crate"), expectVersion(1))))
	require.Equal(t, StatusConflict, ev.Status)
	require.Equal(t, []Change{{Entity: "crate", Version: 2, Exists: true}}, ev.Changes)
	ev = h.event(act("w", "p", 5, withExpect(opDelete("crate"), expectAbsent)))
	require.Equal(t, StatusConflict, ev.Status)

	ev = h.event(act("w", "p", 6, withExpect(opDelete("crate"), expectVersion(2))))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, []Change{{Entity: "crate", Op: OpDelete, Version: 2}}, ev.Changes)
	require.Empty(t, ev.Versions())
	_, err := h.f.Entity("w", "crate")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, CodeNotFound, Code(err))
	wi, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, 1, wi.Entities)

	// With crate gone the hash is that of a world where only other (x=1 at
	// version 3) exists, however it got there.
	require.NotEqual(t, empty, withOther)
	require.NotEqual(t, withOther, h.hash("w"))
	h2 := newHarness(t)
	h2.createWorld("w", Rules{})
	h2.apply(cmdAction(act("w", "q", 1, opSet("u", "u", Int(0)))), cmdAction(act("w", "q", 2, opSet("u", "v", Int(0)))))
	h2.event(act("w", "p", 3, opSet("other", "x", Int(1))))
	h2.event(act("w", "p", 4, opDelete("u")))
	require.Equal(t, h.hash("w"), h2.hash("w"))

	// Deleting a missing entity applies and changes nothing; "*" holds for it.
	before := h.hash("w")
	ev = h.event(act("w", "p", 7, withExpect(opDelete("crate"), expectAbsent)))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, []Change{{Entity: "crate", Op: OpDelete}}, ev.Changes)
	require.Equal(t, before, h.hash("w"))
	ev = h.event(act("w", "p", 8, withExpect(opDelete("crate"), expectVersion(2))))
	require.Equal(t, StatusConflict, ev.Status)
	require.Equal(t, []Change{{Entity: "crate"}}, ev.Changes)
}

func TestDeletingTheLastEntityRestoresTheEmptyHash(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	require.Zero(t, h.hash("w"))
	h.event(act("w", "p", 1, opSet("e", "a", String("x")), opIncr("e", "b", 3), opAdd("e", "c", Int(1)), opSet("f", "a", String("y"))))
	require.NotZero(t, h.hash("w"))
	h.event(act("w", "p", 2, opDelete("e"), opDelete("f")))
	require.Zero(t, h.hash("w"))
}

func TestARecreatedEntityStartsFreshButKeepsInferredRules(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opIncr("e", "hp", 10), opSet("e", "name", String("ann"))))
	h.event(act("w", "p", 2, opDelete("e")))
	ev := h.event(act("w", "p", 3, opIncr("e", "hp", 1)))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, EntityView{ID: "e", Version: 3, Seq: 3, Fields: []FieldView{{Name: "hp", Policy: PolicyCounter, Value: Int(1), Version: 3}}}, h.entity("w", "e"))
	ev = h.event(act("w", "p", 4, opSet("e", "hp", Int(1))))
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, CodePolicyViolation, ev.Reason)
}

func TestSetThenDeleteAndDeleteThenSetInOneAction(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opSet("e", "x", Int(1)), opDelete("e")))
	_, err := h.f.Entity("w", "e")
	require.ErrorIs(t, err, ErrNotFound)
	require.Zero(t, h.hash("w"))
	h.event(act("w", "p", 2, opSet("e", "x", Int(1))))
	ev := h.event(act("w", "p", 3, opDelete("e"), opSet("e", "y", Int(2))))
	require.Equal(t, []Change{{Entity: "e", Op: OpDelete, Version: 2}, {Entity: "e", Field: "y", Op: OpSet, Value: Int(2), Version: 3}}, ev.Changes)
	require.Equal(t, []FieldView{{Name: "y", Policy: PolicyAuthoritative, Value: Int(2), Version: 3}}, h.entity("w", "e").Fields)
}

func TestUndeclaredFieldTakesItsPolicyFromTheFirstOp(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{"declared": {Type: KindInt, Policy: PolicyMax}}))
	h.event(act("w", "p", 1,
		opIncr("e", "hp", 3),
		opAdd("e", "tags", String("a")),
		opRemove("e", "gone", Int(1)),
		opSet("e", "name", String("ann")),
		opSet("e", "declared", Int(4)),
	))
	got := map[string]Policy{}
	for _, fv := range h.entity("w", "e").Fields {
		got[fv.Name] = fv.Policy
	}
	require.Equal(t, map[string]Policy{
		"hp": PolicyCounter, "tags": PolicySet, "gone": PolicySet, "name": PolicyAuthoritative, "declared": PolicyMax,
	}, got)

	// The inferred policies and types now bind every entity of the world.
	for i, o := range []Op{
		opSet("x", "hp", Int(1)),
		opIncr("x", "name", 1),
		opSet("x", "tags", String("a")),
		opAdd("x", "name", String("a")),
	} {
		ev := h.event(act("w", "q", uint64(i+1), o))
		require.Equal(t, StatusRejected, ev.Status, "%+v", o)
		require.Equal(t, CodePolicyViolation, ev.Reason)
	}
	for i, o := range []Op{
		opSet("x", "name", Int(1)),
		opAdd("x", "tags", Int(1)),
		opRemove("x", "gone", String("1")),
	} {
		ev := h.event(act("w", "r", uint64(i+1), o))
		require.Equal(t, StatusRejected, ev.Status, "%+v", o)
		require.Equal(t, CodeTypeMismatch, ev.Reason)
	}
	ev := h.event(act("w", "s", 1, opSet("x", "name", String("bob")), opIncr("x", "hp", -1), opAdd("x", "tags", String("b"))))
	require.Equal(t, StatusApplied, ev.Status)
}

func TestInferenceWithinOneActionBindsItsLaterOps(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	ev := h.event(act("w", "p", 1, opSet("e", "x", Int(1)), opSet("f", "x", String("a"))))
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, CodeTypeMismatch, ev.Reason)
	ev = h.event(act("w", "p", 2, opAdd("e", "t", Int(1)), opIncr("e", "t", 1)))
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, CodePolicyViolation, ev.Reason)

	// The rejected actions inferred nothing: x can still become a string.
	ev = h.event(act("w", "p", 3, opSet("e", "x", String("s")), opSet("f", "x", String("t")), opAdd("e", "t", String("a")), opAdd("e", "t", String("b"))))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, String("t"), h.field("w", "f", "x").Value)
	require.Equal(t, []Value{String("a"), String("b")}, h.field("w", "e", "t").Set)
}

func TestStrictWorldRejectsUndeclaredFields(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(true, map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}))
	for i, o := range []Op{opSet("e", "name", String("x")), opIncr("e", "mana", 1), opAdd("e", "tags", Int(1)), opRemove("e", "tags", Int(1))} {
		ev := h.event(act("w", "p", uint64(i+1), opIncr("e", "hp", 1), o))
		require.Equal(t, StatusRejected, ev.Status)
		require.Equal(t, CodeUndeclaredField, ev.Reason)
		require.Empty(t, ev.Changes)
	}
	_, err := h.f.Entity("w", "e")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, StatusApplied, h.event(act("w", "p", 9, opIncr("e", "hp", 1), opDelete("other"))).Status)
}

func TestTypeMismatchesAreRejected(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{
		"name": {Type: KindString, Policy: PolicyAuthoritative},
		"n":    {Type: KindInt, Policy: PolicyAuthoritative},
		"tags": {Type: KindString, Policy: PolicySet},
		"best": {Type: KindInt, Policy: PolicyMax},
		"on":   {Type: KindBool, Policy: PolicyAuthoritative},
	}))
	for i, o := range []Op{
		opSet("e", "name", Int(1)),
		opSet("e", "n", Float(1.5)),
		opSet("e", "n", Bool(true)),
		opAdd("e", "tags", Int(1)),
		opRemove("e", "tags", Bool(false)),
		opSet("e", "best", String("9")),
		opSet("e", "on", Int(1)),
	} {
		ev := h.event(act("w", "p", uint64(i+1), o))
		require.Equal(t, StatusRejected, ev.Status, "%+v", o)
		require.Equal(t, CodeTypeMismatch, ev.Reason, "%+v", o)
	}
}

func TestIntLiteralIntoFloatFieldIsCoerced(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{
		"x":    {Type: KindFloat, Policy: PolicyAuthoritative},
		"pts":  {Type: KindFloat, Policy: PolicySet},
		"tmin": {Type: KindFloat, Policy: PolicyMin},
	}))
	ev := h.event(act("w", "p", 1, opSet("e", "x", Int(3)), opAdd("e", "pts", Int(2)), opSet("e", "tmin", Int(-1))))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, []Change{
		{Entity: "e", Field: "x", Op: OpSet, Value: Float(3), Version: 1},
		{Entity: "e", Field: "pts", Op: OpAdd, Value: Float(2), Version: 1},
		{Entity: "e", Field: "tmin", Op: OpSet, Value: Float(-1), Version: 1},
	}, ev.Changes)
	// An inferred float field coerces too; the element 2 and 2.0 are one element.
	h.event(act("w", "p", 2, opSet("e", "y", Float(0.5)), opAdd("e", "pts", Float(2))))
	h.event(act("w", "p", 3, opSet("e", "y", Int(7))))
	require.Equal(t, Float(7), h.field("w", "e", "y").Value)
	require.Equal(t, []Value{Float(2)}, h.field("w", "e", "pts").Set)
	require.Equal(t, uint64(1), h.field("w", "e", "pts").Version)
}

func TestOpsTheirFieldPolicyRefusesAreRejected(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{
		"name": {Type: KindString, Policy: PolicyAuthoritative},
		"hp":   {Type: KindInt, Policy: PolicyCounter},
		"tags": {Type: KindString, Policy: PolicySet},
		"best": {Type: KindInt, Policy: PolicyMax},
		"low":  {Type: KindInt, Policy: PolicyMin},
	}))
	for i, o := range []Op{
		opIncr("e", "name", 1),
		opAdd("e", "name", String("a")),
		opSet("e", "hp", Int(1)),
		opAdd("e", "hp", Int(1)),
		opSet("e", "tags", String("a")),
		opIncr("e", "tags", 1),
		opIncr("e", "best", 1),
		opRemove("e", "low", Int(1)),
	} {
		ev := h.event(act("w", "p", uint64(i+1), o))
		require.Equal(t, StatusRejected, ev.Status, "%+v", o)
		require.Equal(t, CodePolicyViolation, ev.Reason, "%+v", o)
	}
	require.Zero(t, h.hash("w"))
}

func TestMalformedActionsAreRejectedAsNumberedEvents(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	for i, a := range []*Action{
		act("w", "p", 1),
		act("w", "p", 2, Op{Kind: OpSet, Entity: "e", Field: "f"}),
		act("w", "", 3, opIncr("e", "c", 1)),
		{World: "w", Player: "p", Seq: 4, Priority: 5, Ops: []Op{opIncr("e", "c", 1)}},
		act("w", "p", 5, Op{Kind: OpAdd, Entity: "e", Field: "f", Value: Value{Kind: 9}}),
		act("w", "p", 6, withExpect(opIncr("e", "c", 1), Expect{Mode: 7})),
	} {
		// Bad value kinds and expect modes do not survive the binary codec
		// (DecodeBatch refuses them), so they can only arrive pre-decoded.
		h.index++
		ev := h.f.ApplyBatch(h.index, &Batch{Commands: []Command{cmdAction(a)}})[0].Event
		require.Equal(t, uint64(i+1), ev.Seq)
		require.Equal(t, StatusRejected, ev.Status)
		require.Equal(t, CodeMalformed, ev.Reason)
		require.Empty(t, ev.Changes)
	}
	require.Zero(t, h.hash("w"))
}

// allOrNothingWorld builds a world with one entity holding every policy.
func allOrNothingWorld(t *testing.T) *harness {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{
		"name": {Type: KindString, Policy: PolicyAuthoritative},
		"hp":   {Type: KindInt, Policy: PolicyCounter},
		"tags": {Type: KindString, Policy: PolicySet},
		"best": {Type: KindInt, Policy: PolicyMax},
	}))
	h.createWorld("strict", rules(true, map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}))
	h.event(act("w", "setup", 1, opSet("e", "name", String("ann")), opIncr("e", "hp", 10), opAdd("e", "tags", String("a")), opSet("e", "best", Int(5))))
	h.event(act("w", "setup", 2, opSet("other", "name", String("bob"))))
	h.event(act("strict", "setup", 1, opIncr("e", "hp", 10)))
	return h
}

func TestActionWhoseSecondOpFailsLeavesNoChange(t *testing.T) {
	first := []Op{
		opSet("e", "name", String("changed")),
		opIncr("e", "hp", 5),
		opAdd("e", "tags", String("b")),
		opRemove("e", "tags", String("a")),
		opSet("e", "best", Int(100)),
		opDelete("other"),
		opSet("fresh", "name", String("new")),
	}
	second := []struct {
		name   string
		world  string
		op     Op
		status Status
		reason string
	}{
		{"policy", "w", opSet("e", "hp", Int(1)), StatusRejected, CodePolicyViolation},
		{"type", "w", opSet("e", "name", Int(1)), StatusRejected, CodeTypeMismatch},
		{"undeclared", "strict", opSet("e", "name", String("x")), StatusRejected, CodeUndeclaredField},
		{"malformed", "w", opSet("e", "", String("x")), StatusRejected, CodeMalformed},
		{"expect absent", "w", withExpect(opSet("e", "name", String("x")), expectAbsent), StatusConflict, ""},
		{"expect version", "w", withExpect(opIncr("e", "hp", 1), expectVersion(2)), StatusConflict, ""},
		{"expect delete", "w", withExpect(opDelete("e"), expectVersion(9)), StatusConflict, ""},
	}
	for _, s := range second {
		for _, f := range first {
			t.Run(s.name+"/"+f.Kind.String(), func(t *testing.T) {
				h := allOrNothingWorld(t)
				if s.world == "strict" && f.Field != "hp" && f.Kind != OpDelete {
					f = opIncr("e", "hp", 5)
				}
				hashBefore := h.hash(s.world)
				views := map[string]EntityView{}
				for _, id := range []string{"e", "other"} {
					if v, err := h.f.Entity(s.world, id); err == nil {
						views[id] = v
					}
				}
				info, err := h.f.World(s.world)
				require.NoError(t, err)

				ev := h.event(act(s.world, "p", 1, f, s.op))
				require.Equal(t, s.status, ev.Status)
				require.Equal(t, s.reason, ev.Reason)
				require.Equal(t, info.Seq+1, ev.Seq)
				if s.status == StatusConflict {
					require.Len(t, ev.Changes, 1)
				} else {
					require.Empty(t, ev.Changes)
				}

				require.Equal(t, hashBefore, h.hash(s.world), "hash unchanged")
				for id, v := range views {
					got := h.entity(s.world, id)
					v.Seq = got.Seq // only the seq bookkeeping moved
					require.Equal(t, v, got)
				}
				_, err = h.f.Entity(s.world, "fresh")
				require.ErrorIs(t, err, ErrNotFound)
				after, err := h.f.World(s.world)
				require.NoError(t, err)
				require.Equal(t, info.Entities, after.Entities)
				require.Equal(t, info.Seq+1, after.Seq)
			})
		}
	}
}

func TestApplyAndApplyBatchReachTheSameState(t *testing.T) {
	batches := []*Batch{
		sampleBatch(),
		{Time: 5, Commands: []Command{
			cmdAction(act("lobby", "bob", 1, opIncr("e", "c", 1), opAdd("e", "s", Float(1)))),
			cmdAction(act("arena", "ann", 300, opIncr("score", "hp", 1))), // duplicate seq, other payload
			{Kind: CmdPutNode, Node: &NodeInfo{ID: "n2", RaftAddr: "r", HTTPAddr: "h"}},
		}},
	}
	a, err := New(DefaultConfig())
	require.NoError(t, err)
	b, err := New(DefaultConfig())
	require.NoError(t, err)
	for i, bt := range batches {
		ra := a.Apply(uint64(i+1), EncodeBatch(bt))
		rb := b.ApplyBatch(uint64(i+1), bt)
		require.Equal(t, ra, rb)
	}
	require.Equal(t, snapshotBytes(t, a), snapshotBytes(t, b))
	require.Equal(t, a.Worlds(), b.Worlds())
}
