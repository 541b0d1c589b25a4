package fsm

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// sampleBatch holds every command kind, op kind, value kind and expect mode.
func sampleBatch() *Batch {
	return &Batch{
		Time: 1_700_000_000_123_456_789,
		Commands: []Command{
			cmdWorld("arena", rules(true, map[string]FieldRule{
				"hp":   {Type: KindInt, Policy: PolicyCounter},
				"tags": {Type: KindString, Policy: PolicySet},
				"best": {Type: KindFloat, Policy: PolicyMax},
			})),
			{Kind: CmdCreateWorld, World: &WorldSpec{ID: "lobby"}},
			cmdAction(&Action{
				World: "arena", Player: "ann", Seq: 300, InputTime: -5, Priority: PriorityBulk,
				Ops: []Op{
					withExpect(opSet("door", "open", Bool(true)), expectAbsent),
					withExpect(opSet("door", "owner", String("ann ☃")), expectVersion(1<<40)),
					opSet("door", "angle", Float(-0.125)),
					opSet("door", "code", Int(math.MinInt64)),
					opIncr("score", "hp", math.MaxInt64),
					opAdd("score", "tags", String("x")),
					opRemove("score", "tags", Int(3)),
					withExpect(opDelete("crate"), expectVersion(2)),
				},
			}),
			{Kind: CmdPutNode, Node: &NodeInfo{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080", Region: "eu-west"}},
			{Kind: CmdRemoveNode, Node: &NodeInfo{ID: "n0"}},
			{Kind: CmdSessionAcks, Acks: []SessionAck{{World: "arena", ID: "s1", Seq: 1 << 40}, {World: "lobby", ID: "s2"}}},
		},
	}
}

func TestBatchRoundTripsEveryCommandKind(t *testing.T) {
	b := sampleBatch()
	enc := EncodeBatch(b)
	require.Equal(t, batchMagic, enc[0])
	got, err := DecodeBatch(enc)
	require.NoError(t, err)
	require.Equal(t, b, got)
	require.Equal(t, enc, EncodeBatch(got))
}

func TestEmptyBatchRoundTrips(t *testing.T) {
	got, err := DecodeBatch(EncodeBatch(&Batch{Time: -1}))
	require.NoError(t, err)
	require.Equal(t, int64(-1), got.Time)
	require.Empty(t, got.Commands)
}

func TestBatchEncodingIsCanonical(t *testing.T) {
	build := func(names ...string) *Batch {
		fields := map[string]FieldRule{}
		for _, n := range names {
			fields[n] = FieldRule{Type: KindInt, Policy: PolicyCounter}
		}
		return &Batch{Commands: []Command{cmdWorld("w", rules(false, fields))}}
	}
	a := EncodeBatch(build("a", "b", "c", "d", "e", "f", "g", "h"))
	for range 20 {
		require.Equal(t, a, EncodeBatch(build("h", "g", "f", "e", "d", "c", "b", "a")))
	}
}

func TestEncodeActionIsTheSpanTheBatchCarries(t *testing.T) {
	b := sampleBatch()
	a := b.Commands[2].Action
	enc := EncodeBatch(b)
	require.True(t, bytes.Contains(enc, EncodeAction(a)))
	db, err := decodeBatch(enc)
	require.NoError(t, err)
	require.Equal(t, EncodeAction(a), db.spans[2])
	require.Nil(t, db.spans[0])
}

func TestDecodeBatchFailsCleanlyOnEveryTruncation(t *testing.T) {
	enc := EncodeBatch(sampleBatch())
	for i := range len(enc) {
		got, err := DecodeBatch(enc[:i])
		require.ErrorIs(t, err, ErrMalformed, "prefix of %d bytes", i)
		require.Nil(t, got)
	}
}

// rawBatch builds a batch encoding by hand.
func rawBatch(body func(e *encoder)) []byte {
	e := &encoder{}
	e.byte(batchMagic)
	e.varint(0)
	body(e)
	return e.b
}

// rawAction writes one action command whose single op is written by op.
func rawAction(op func(e *encoder)) []byte {
	return rawBatch(func(e *encoder) {
		e.uvarint(1)
		e.byte(byte(CmdAction))
		e.str("w")
		e.str("p")
		e.uvarint(1)
		e.varint(0)
		e.byte(0)
		e.uvarint(1)
		op(e)
	})
}

func TestDecodeBatchRejectsMalformedEncodings(t *testing.T) {
	valid := EncodeBatch(sampleBatch())
	setOp := func(value func(e *encoder), expect func(e *encoder)) []byte {
		return rawAction(func(e *encoder) {
			e.byte(byte(OpSet))
			e.str("e")
			e.str("f")
			value(e)
			e.varint(0)
			expect(e)
		})
	}
	noExpect := func(e *encoder) { e.expect(Expect{}) }
	cases := map[string][]byte{
		"empty":          nil,
		"wrong magic":    append([]byte{0xB3}, valid[1:]...),
		"trailing bytes": append(append([]byte(nil), valid...), 0),
		"unknown command kind": rawBatch(func(e *encoder) {
			e.uvarint(1)
			e.byte(9)
			e.str("padding")
		}),
		"count beyond input": rawBatch(func(e *encoder) { e.uvarint(1000) }),
		"uvarint overflow": rawBatch(func(e *encoder) {
			e.b = append(e.b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}),
		"varint overflow": append([]byte{batchMagic}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0),
		"string beyond input": rawBatch(func(e *encoder) {
			e.uvarint(1)
			e.byte(byte(CmdPutNode))
			e.uvarint(50)
			e.str("short")
		}),
		"bad flags in rules": rawBatch(func(e *encoder) {
			e.uvarint(1)
			e.byte(byte(CmdCreateWorld))
			e.str("w")
			e.str("")
			e.byte(8) // flags: only strict, fair and schema exist
			e.uvarint(0)
		}),
		"fair flag without settings": rawBatch(func(e *encoder) {
			e.uvarint(1)
			e.byte(byte(CmdCreateWorld))
			e.str("w")
			e.str("")
			e.byte(rulesFair)
			e.varint(0)
			e.varint(0)
			e.uvarint(0)
		}),
		"bool value out of range": setOp(func(e *encoder) { e.byte(byte(KindBool)); e.varint(2) }, noExpect),
		"NaN value":               setOp(func(e *encoder) { e.byte(byte(KindFloat)); e.float(math.NaN()) }, noExpect),
		"infinite value":          setOp(func(e *encoder) { e.byte(byte(KindFloat)); e.float(math.Inf(-1)) }, noExpect),
		"unknown value kind":      setOp(func(e *encoder) { e.byte(7) }, noExpect),
		"truncated float":         setOp(func(e *encoder) { e.byte(byte(KindFloat)); e.b = append(e.b, 1, 2, 3) }, func(*encoder) {}),
		"bad expect mode": setOp(func(e *encoder) { e.value(Int(1)) }, func(e *encoder) {
			e.byte(3)
			e.uvarint(0)
		}),
	}
	for name, p := range cases {
		got, err := DecodeBatch(p)
		require.ErrorIs(t, err, ErrMalformed, name)
		require.Nil(t, got, name)
	}
}

func TestDecodeBatchAcceptsValuesOfEveryKindWrittenByHand(t *testing.T) {
	for _, v := range []Value{Int(-1), Float(3.5), String("s"), Bool(true), Bool(false)} {
		p := rawAction(func(e *encoder) {
			e.byte(byte(OpSet))
			e.str("e")
			e.str("f")
			e.value(v)
			e.varint(0)
			e.expect(Expect{})
		})
		b, err := DecodeBatch(p)
		require.NoError(t, err)
		require.Equal(t, v, b.Commands[0].Action.Ops[0].Value)
	}
}

func TestMinimalMalformedActionsSurviveTheCodecAndAreRejectedNotPanicked(t *testing.T) {
	// The smallest op encoding is 7 bytes (empty names, null value); the
	// decoder once demanded 8 per op, so such an entry made Apply panic.
	b := &Batch{Commands: []Command{cmdAction(act("w", "p", 1, Op{Kind: OpIncr}, Op{Kind: OpDelete}))}}
	enc := EncodeBatch(b)
	got, err := DecodeBatch(enc)
	require.NoError(t, err)
	require.Equal(t, b, got)

	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.index++
	res := h.f.Apply(h.index, enc)
	require.Equal(t, StatusRejected, res[0].Event.Status)
	require.Equal(t, CodeMalformed, res[0].Event.Reason)
}

func TestApplyPanicsOnUndecodableEntries(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	before := h.snapshotBytes()
	valid := EncodeBatch(&Batch{Commands: []Command{cmdAction(act("w", "p", 1, opIncr("e", "c", 1)))}})
	for _, p := range [][]byte{nil, {0x00}, []byte("GSDSNAP"), valid[:len(valid)-1]} {
		require.Panics(t, func() { h.f.Apply(77, p) }, "%x", p)
	}
	msg := func() (msg any) {
		defer func() { msg = recover() }()
		h.f.Apply(77, []byte{1})
		return nil
	}()
	require.Contains(t, fmt.Sprint(msg), "index 77")
	require.Equal(t, before, h.snapshotBytes(), "a refused entry changes nothing")
	require.Equal(t, uint64(1), h.f.AppliedIndex())
}

func sampleEvent() *Event {
	return &Event{
		World: "arena", Seq: 1 << 33, Index: 12345, Time: -42, Player: "ann", ClientSeq: 9,
		Priority: PriorityBulk, Status: StatusConflict, Reason: "",
		Changes: []Change{
			{Entity: "door", Field: "owner", Value: String("bob"), Version: 7, Exists: true},
			{Entity: "door", Field: "tags", Set: []Value{Int(1), Float(2.5), String("z"), Bool(true)}, Version: 8, Exists: true},
			{Entity: "door", Field: "new"},
			{Entity: "crate", Op: OpDelete, Version: 3},
			{Entity: "score", Field: "hp", Op: OpIncr, Value: Int(-3), Version: 1},
		},
	}
}

func TestEventRoundTrips(t *testing.T) {
	for _, ev := range []*Event{
		sampleEvent(),
		{World: "w", Seq: 1, Status: StatusRejected, Reason: CodeValidator},
		{World: "w", Seq: 2, Status: StatusApplied, Changes: []Change{{Entity: "e", Field: "f", Op: OpSet, Value: Bool(false), Version: 2}}},
	} {
		enc := EncodeEvent(ev)
		got, err := DecodeEvent(enc)
		require.NoError(t, err)
		require.Equal(t, ev, got)
		require.Equal(t, enc, EncodeEvent(got))
	}
}

func TestDecodeEventFailsCleanlyOnEveryTruncation(t *testing.T) {
	enc := EncodeEvent(sampleEvent())
	for i := range len(enc) {
		got, err := DecodeEvent(enc[:i])
		require.ErrorIs(t, err, ErrMalformed, "prefix of %d bytes", i)
		require.Nil(t, got)
	}
}

func TestDecodeEventRejectsTrailingBytesAndBadFlags(t *testing.T) {
	enc := EncodeEvent(sampleEvent())
	_, err := DecodeEvent(append(append([]byte(nil), enc...), 0))
	require.ErrorIs(t, err, ErrMalformed)

	one := EncodeEvent(&Event{World: "w", Changes: []Change{{Entity: "e", Field: "f", Exists: true}}})
	require.Equal(t, byte(1), one[len(one)-1])
	one[len(one)-1] = 2 // Exists is neither false nor true
	_, err = DecodeEvent(one)
	require.ErrorIs(t, err, ErrMalformed)
}

// Apply decodes every entry into the same scratch space: whatever came
// before (more commands, fewer, other kinds, actions of many ops), each
// decode equals a decode into fresh memory.
func TestDecodeIntoReusedScratchEqualsAFreshDecode(t *testing.T) {
	many := func(n int, player string) []byte {
		cmds := make([]Command, n)
		for i := range cmds {
			cmds[i] = cmdAction(act("arena", player, uint64(i+1), opIncr("e", "hp", int64(i))))
		}
		return EncodeBatch(&Batch{Time: int64(n), Commands: cmds})
	}
	var s decodeScratch
	for _, p := range [][]byte{EncodeBatch(sampleBatch()), many(40, "bob"), EncodeBatch(sampleBatch()), many(2, "cy"), many(0, "")} {
		fresh, err := decodeBatch(p)
		require.NoError(t, err)
		got, err := decodeBatchInto(p, &s)
		require.NoError(t, err)
		require.Equal(t, fresh.Batch, got.Batch)
		require.Equal(t, fresh.spans, got.spans)
	}
}

// Decoding into reused scratch allocates only each action's player and
// entity names: no decoder, batch, command, action or op, and the world
// and field names repeat without a copy.
func TestDecodeIntoScratchAllocatesOnlyNames(t *testing.T) {
	cmds := make([]Command, 50)
	for i := range cmds {
		cmds[i] = cmdAction(act("arena", fmt.Sprint("player-", i), uint64(i+1), opIncr(fmt.Sprint("entity-", i), "hp", 1)))
	}
	p := EncodeBatch(&Batch{Time: 1, Commands: cmds})
	var s decodeScratch
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := decodeBatchInto(p, &s); err != nil {
			t.Fatal(err)
		}
	})
	require.Equal(t, float64(2*len(cmds)+2), allocs, "two names per action, and the entry's world and field name once")
}
