package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestPriorityIsCriticalUnlessBulk(t *testing.T) {
	require.Equal(t, "critical", PriorityCritical.String())
	require.Equal(t, "bulk", PriorityBulk.String())
	require.Equal(t, "critical", Priority(7).String())
	var a Action
	require.Equal(t, PriorityCritical, a.Priority)
}

func TestActionValidateAcceptsWellFormedActionsAtTheLimits(t *testing.T) {
	long := strings.Repeat("n", MaxNameLen)
	a := &Action{World: long, Player: long, Seq: 1, Priority: PriorityBulk}
	for i := range MaxOpsPerAction {
		switch i % 5 {
		case 0:
			a.Ops = append(a.Ops, withExpect(opSet(long, long, String(strings.Repeat("s", MaxStringLen))), expectAbsent))
		case 1:
			a.Ops = append(a.Ops, opIncr("e", "c", -5))
		case 2:
			a.Ops = append(a.Ops, opAdd("e", "s", Bool(true)))
		case 3:
			a.Ops = append(a.Ops, opRemove("e", "s", Float(1.5)))
		case 4:
			a.Ops = append(a.Ops, withExpect(opDelete("e"), expectVersion(3)))
		}
	}
	require.NoError(t, a.Validate())
}

func TestActionValidateRejectsMalformedActions(t *testing.T) {
	good := func() *Action { return act("w", "p", 1, opSet("e", "f", Int(1))) }
	tooMany := good()
	for range MaxOpsPerAction {
		tooMany.Ops = append(tooMany.Ops, opIncr("e", "c", 1))
	}
	cases := map[string]*Action{
		"no world":         {Player: "p", Seq: 1, Ops: good().Ops},
		"no player":        {World: "w", Seq: 1, Ops: good().Ops},
		"long player":      {World: "w", Player: strings.Repeat("p", MaxNameLen+1), Seq: 1, Ops: good().Ops},
		"invalid utf-8":    {World: "w\xc3", Player: "p", Seq: 1, Ops: good().Ops},
		"seq zero":         {World: "w", Player: "p", Ops: good().Ops},
		"unknown priority": {World: "w", Player: "p", Seq: 1, Priority: 2, Ops: good().Ops},
		"no ops":           act("w", "p", 1),
		"too many ops":     tooMany,
		"op without entity": act("w", "p", 1,
			Op{Kind: OpSet, Field: "f", Value: Int(1)}),
		"bad expect mode": act("w", "p", 1,
			withExpect(opSet("e", "f", Int(1)), Expect{Mode: 3})),
		"delete with field": act("w", "p", 1,
			Op{Kind: OpDelete, Entity: "e", Field: "f"}),
		"set without value": act("w", "p", 1,
			Op{Kind: OpSet, Entity: "e", Field: "f"}),
		"add without value": act("w", "p", 1,
			Op{Kind: OpAdd, Entity: "e", Field: "f"}),
		"bad value kind": act("w", "p", 1,
			opSet("e", "f", Value{Kind: 9})),
		"bool that is two": act("w", "p", 1,
			opSet("e", "f", Value{Kind: KindBool, Int: 2})),
		"NaN float": act("w", "p", 1,
			opSet("e", "f", Float(math.NaN()))),
		"infinite float": act("w", "p", 1,
			opSet("e", "f", Float(math.Inf(-1)))),
		"incr with NaN value": act("w", "p", 1,
			Op{Kind: OpIncr, Entity: "e", Field: "f", By: 1, Value: Float(math.NaN())}),
		"delete with a bad bool": act("w", "p", 1,
			Op{Kind: OpDelete, Entity: "e", Value: Value{Kind: KindBool, Int: 5}}),
		"incr with long string": act("w", "p", 1,
			Op{Kind: OpIncr, Entity: "e", Field: "f", Value: String(strings.Repeat("s", MaxStringLen+1))}),
		"string too long": act("w", "p", 1,
			opSet("e", "f", String(strings.Repeat("s", MaxStringLen+1)))),
		"unknown op zero": act("w", "p", 1,
			Op{Entity: "e", Field: "f", Value: Int(1)}),
		"unknown op nine": act("w", "p", 1,
			Op{Kind: 9, Entity: "e", Field: "f", Value: Int(1)}),
		"incr without field": act("w", "p", 1,
			opIncr("e", "", 1)),
		"remove with long field": act("w", "p", 1,
			opRemove("e", strings.Repeat("f", MaxNameLen+1), Int(1))),
	}
	for name, a := range cases {
		err := a.Validate()
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	err := act("w", "p", 1, opSet("e", "f", Int(1)), opIncr("", "c", 1)).Validate()
	require.ErrorContains(t, err, "op 1:")
}

func TestOpJSONRoundTripsEveryOpKind(t *testing.T) {
	ops := []Op{
		opSet("e", "f", Int(-3)),
		withExpect(opSet("e", "name", String("ann")), expectAbsent),
		withExpect(opSet("e", "speed", Float(2.5)), expectVersion(17)),
		opSet("e", "alive", Bool(false)),
		opIncr("e", "hp", -10),
		opIncr("e", "hp", 0),
		opAdd("e", "tags", String("red")),
		opRemove("e", "tags", String("blue")),
		opDelete("e"),
		withExpect(opDelete("e"), expectVersion(9)),
	}
	for _, o := range ops {
		b, err := json.Marshal(o)
		require.NoError(t, err)
		var got Op
		require.NoError(t, json.Unmarshal(b, &got), string(b))
		require.Equal(t, o, got, string(b))
	}
}

func TestActionsDecodeFromJSONListsOfOps(t *testing.T) {
	var ops []Op
	require.NoError(t, json.Unmarshal([]byte(`[
		{"op":"set","entity":"door","field":"open","value":true,"expect":"*"},
		{"op":"incr","entity":"score","field":"red","by":1}]`), &ops))
	require.Equal(t, []Op{withExpect(opSet("door", "open", Bool(true)), expectAbsent), opIncr("score", "red", 1)}, ops)
}

type codedError struct{ code string }

func (e codedError) Error() string { return "coded: " + e.code }
func (e codedError) Code() string  { return e.code }

func TestCodeMapsEverySentinelAndWrappedErrors(t *testing.T) {
	want := map[error]string{
		ErrMalformed:       CodeMalformed,
		ErrUnknownWorld:    CodeUnknownWorld,
		ErrWorldExists:     CodeWorldExists,
		ErrNotFound:        CodeNotFound,
		ErrTypeMismatch:    CodeTypeMismatch,
		ErrPolicyViolation: CodePolicyViolation,
		ErrUndeclaredField: CodeUndeclaredField,
		ErrSeqReused:       CodeSeqReused,
		ErrSeqExpired:      CodeSeqExpired,
		ErrSeqUnknown:      CodeSeqUnknown,
		ErrValidator:       CodeValidator,
		ErrSessionUnknown:  CodeSessionUnknown,
		ErrSessionExists:   CodeSessionExists,
		ErrSessionDenied:   CodeSessionDenied,
		ErrSessionKicked:   CodeSessionKicked,
		ErrBanned:          CodeBanned,
		ErrNotSupported:    CodeNotSupported,
		ErrRulesConflict:   CodeRulesConflict,
		// A rules update the world's state would not satisfy.
		ErrRulesIncompatible: CodeRulesIncompatible,
		ErrUnknownAction:     CodeUnknownAction,
		ErrForbidden:         CodeForbidden,
		ErrActionFailed:      CodeActionFailed,
		ErrWorldFull:         CodeWorldFull,
		ErrWorldActive:       CodeWorldActive,
		ErrWorldMoved:        CodeWorldMoved,
		ErrDataConflict:      CodeDataConflict,
		ErrUnsalted:          CodeUnsalted,
	}
	require.Len(t, want, len(codes))
	for err, code := range want {
		require.Equal(t, code, Code(err))
		require.Equal(t, code, Code(fmt.Errorf("context: %w", err)))
	}
	require.Equal(t, "", Code(nil))
	require.Equal(t, "", Code(errors.New("other")))
	require.Equal(t, "", Code(codedError{"x"}), "Code only knows fsm sentinels")
}

func TestStatusStringNamesStatuses(t *testing.T) {
	require.Equal(t, "applied", StatusApplied.String())
	require.Equal(t, "conflict", StatusConflict.String())
	require.Equal(t, "rejected", StatusRejected.String())
	require.Equal(t, "", Status(0).String())
	require.Equal(t, "status(8)", Status(8).String())
}

func TestEventJSONWireFormOfAnAppliedEvent(t *testing.T) {
	ev := Event{
		World: "w", Seq: 7, Index: 3, Time: 99, Player: "p", ClientSeq: 12, Priority: PriorityBulk, Status: StatusApplied,
		Changes: []Change{
			{Entity: "e", Field: "hp", Op: OpIncr, Value: Int(5), Version: 7},
			{Entity: "e", Field: "tags", Op: OpAdd, Value: String("x"), Version: 7},
			{Entity: "gone", Op: OpDelete, Version: 4},
		},
	}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	require.JSONEq(t, `{"world":"w","seq":7,"index":3,"time":99,"player":"p","client_seq":12,
		"priority":"bulk","status":"applied",
		"versions":{"e":{"hp":7,"tags":7}},
		"changes":[
			{"entity":"e","field":"hp","op":"incr","value":5,"version":7},
			{"entity":"e","field":"tags","op":"add","value":"x","version":7},
			{"entity":"gone","op":"delete","version":4}]}`, string(b))
	var got wire.Event
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, ev.Wire(), got)
}

func TestEventJSONOfAConflictCarriesExistsAndCurrentState(t *testing.T) {
	ev := Event{
		World: "w", Seq: 8, Player: "p", ClientSeq: 1, Status: StatusConflict,
		Changes: []Change{
			{Entity: "e", Field: "owner", Value: String("ann"), Version: 3, Exists: true},
			{Entity: "e", Field: "tags", Set: []Value{Int(1), Int(2)}, Version: 5, Exists: true},
			{Entity: "e", Field: "new", Exists: false},
		},
	}
	j := ev.Wire()
	require.Equal(t, "conflict", j.Status)
	require.Equal(t, "critical", j.Priority)
	require.Equal(t, map[string]map[string]uint64{"e": {"owner": 3, "tags": 5, "new": 0}}, j.Versions)
	require.Len(t, j.Changes, 3)
	for i, c := range j.Changes {
		require.NotNil(t, c.Exists)
		require.Equal(t, ev.Changes[i].Exists, *c.Exists)
		require.Empty(t, c.Op)
	}
	require.Nil(t, j.Changes[1].Value)
	require.Equal(t, []Value{Int(1), Int(2)}, j.Changes[1].Set)

	b, err := json.Marshal(ev)
	require.NoError(t, err)
	var got wire.Event
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, j, got)
}

func TestEventJSONOfARejectionCarriesReasonAndNoChanges(t *testing.T) {
	ev := Event{World: "w", Seq: 2, Status: StatusRejected, Reason: CodeTypeMismatch}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	require.JSONEq(t, `{"world":"w","seq":2,"index":0,"time":0,"player":"","client_seq":0,
		"priority":"critical","status":"rejected","reason":"type_mismatch"}`, string(b))
	require.Empty(t, ev.Versions())
}
