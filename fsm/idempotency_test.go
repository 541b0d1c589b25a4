package fsm

import (
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestActionRetryWithSameSeqReturnsOriginalResult(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	a := act("w", "ann", 7, opIncr("e", "gold", 10))
	orig := h.event(a)
	h.event(act("w", "bob", 1, opIncr("e", "gold", 1)))
	seq, hash := h.worldSeq("w"), h.hash("w")

	for range 3 {
		r := h.do(act("w", "ann", 7, opIncr("e", "gold", 10)))
		require.NoError(t, r.Err)
		require.True(t, r.Duplicate)
		require.Equal(t, &Event{World: "w", Seq: orig.Seq, Player: "ann", ClientSeq: 7, Status: StatusApplied}, r.Event)
	}
	require.Equal(t, seq, h.worldSeq("w"), "a duplicate takes no new seq")
	require.Equal(t, hash, h.hash("w"))
	require.Equal(t, Int(11), h.field("w", "e", "gold").Value, "applied once")
}

func TestRetryOfARejectedOrConflictingActionReturnsItsOriginalOutcome(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(true, map[string]FieldRule{"x": {Type: KindInt, Policy: PolicyAuthoritative}}))
	h.event(act("w", "p", 1, opSet("e", "x", Int(1))))
	rej := h.event(act("w", "p", 2, opSet("e", "y", Int(1))))
	con := h.event(act("w", "p", 3, withExpect(opSet("e", "x", Int(2)), expectAbsent)))
	require.Equal(t, StatusRejected, rej.Status)
	require.Equal(t, StatusConflict, con.Status)

	// The conflict would now pass (x is at version 1), but a retry is not a new try.
	r := h.do(act("w", "p", 2, opSet("e", "y", Int(1))))
	require.True(t, r.Duplicate)
	require.Equal(t, rej.Seq, r.Event.Seq)
	require.Equal(t, StatusRejected, r.Event.Status)
	require.Equal(t, CodeUndeclaredField, r.Event.Reason)
	r = h.do(act("w", "p", 3, withExpect(opSet("e", "x", Int(2)), expectAbsent)))
	require.True(t, r.Duplicate)
	require.Equal(t, con.Seq, r.Event.Seq)
	require.Equal(t, StatusConflict, r.Event.Status)
	require.Equal(t, Int(1), h.field("w", "e", "x").Value)
}

func TestRetryInTheSameBatchIsADuplicate(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	a := act("w", "p", 1, opIncr("e", "c", 1))
	res := h.apply(cmdAction(a), cmdAction(a), cmdAction(a))
	require.False(t, res[0].Duplicate)
	require.True(t, res[1].Duplicate)
	require.True(t, res[2].Duplicate)
	require.Equal(t, res[0].Event.Seq, res[2].Event.Seq)
	require.Equal(t, Int(1), h.field("w", "e", "c").Value)
}

func TestSeqReusedWithADifferentPayloadIsRefused(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 5, opIncr("e", "c", 1)))
	seq, hash := h.worldSeq("w"), h.hash("w")
	for _, a := range []*Action{
		act("w", "p", 5, opIncr("e", "c", 2)),
		act("w", "p", 5, opIncr("e", "c", 1), opIncr("e", "c", 1)),
		{World: "w", Player: "p", Seq: 5, InputTime: 1, Ops: []Op{opIncr("e", "c", 1)}},
		{World: "w", Player: "p", Seq: 5, Priority: PriorityBulk, Ops: []Op{opIncr("e", "c", 1)}},
		act("w", "p", 5, withExpect(opIncr("e", "c", 1), expectVersion(1))),
	} {
		r := h.do(a)
		require.ErrorIs(t, r.Err, ErrSeqReused)
		require.Equal(t, CodeSeqReused, Code(r.Err))
		require.Nil(t, r.Event)
		require.False(t, r.Duplicate)
	}
	require.Equal(t, seq, h.worldSeq("w"))
	require.Equal(t, hash, h.hash("w"))
}

func TestSeqOlderThanTheWindowIsExpired(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	window := uint64(DefaultConfig().Window)
	h.event(act("w", "p", 1, opIncr("e", "c", 1)))
	h.event(act("w", "p", 2, opIncr("e", "c", 1)))
	h.event(act("w", "p", window+1, opIncr("e", "c", 1))) // takes seq 1's slot
	seq := h.worldSeq("w")

	r := h.do(act("w", "p", 1, opIncr("e", "c", 1)))
	require.ErrorIs(t, r.Err, ErrSeqExpired)
	require.Equal(t, CodeSeqExpired, Code(r.Err))
	require.Nil(t, r.Event)
	// Expired whatever the payload, and never applied again.
	r = h.do(act("w", "p", 1, opIncr("e", "c", 99)))
	require.ErrorIs(t, r.Err, ErrSeqExpired)
	require.Equal(t, seq, h.worldSeq("w"))

	// Seq 2 is still inside the window: a retry is a duplicate.
	r = h.do(act("w", "p", 2, opIncr("e", "c", 1)))
	require.True(t, r.Duplicate)
	require.Equal(t, uint64(2), r.Event.Seq)

	// A seq never used but inside the window applies; one below it expires.
	require.Equal(t, StatusApplied, h.event(act("w", "p", 3, opIncr("e", "c", 1))).Status)
	h.event(act("w", "p", 5000, opIncr("e", "c", 1)))
	r = h.do(act("w", "p", 5000-window, opIncr("e", "c", 1)))
	require.ErrorIs(t, r.Err, ErrSeqExpired)
	require.Equal(t, StatusApplied, h.event(act("w", "p", 5000-window+1, opIncr("e", "c", 1))).Status)
	require.Equal(t, Int(6), h.field("w", "e", "c").Value)
}

func TestEveryOneOfTheLastWindowSeqsIsRetained(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	window := uint64(DefaultConfig().Window)
	const last = 3000
	var cmds []Command
	for s := uint64(1); s <= last; s++ {
		cmds = append(cmds, cmdAction(act("w", "p", s, opIncr("e", "c", 1))))
	}
	applyInBatches(h, cmds, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250)
	for s := uint64(1); s <= last; s++ {
		r := h.do(act("w", "p", s, opIncr("e", "c", 1)))
		if s > last-window {
			require.True(t, r.Duplicate, "seq %d", s)
			require.Equal(t, s, r.Event.Seq)
		} else {
			require.ErrorIs(t, r.Err, ErrSeqExpired, "seq %d", s)
		}
	}
	require.Equal(t, Int(last), h.field("w", "e", "c").Value)
}

func TestALargerWindowRetainsMore(t *testing.T) {
	h := newHarness(t, Config{Window: 2048, HashHistory: 16})
	h.createWorld("w", Rules{})
	h.event(act("w", "p", 1, opIncr("e", "c", 1)))
	h.event(act("w", "p", 2000, opIncr("e", "c", 1)))
	require.True(t, h.do(act("w", "p", 1, opIncr("e", "c", 1))).Duplicate)
	h.event(act("w", "p", 2049, opIncr("e", "c", 1)))
	require.ErrorIs(t, h.do(act("w", "p", 1, opIncr("e", "c", 1))).Err, ErrSeqExpired)
}

func TestIdempotencyIsPerPlayerAndPerWorld(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.createWorld("v", Rules{})
	res := h.apply(
		cmdAction(act("w", "ann", 1, opIncr("e", "c", 1))),
		cmdAction(act("w", "bob", 1, opIncr("e", "c", 1))),
		cmdAction(act("v", "ann", 1, opIncr("e", "c", 1))),
	)
	for _, r := range res {
		require.False(t, r.Duplicate)
		require.Equal(t, StatusApplied, r.Event.Status)
	}
	require.Equal(t, Int(2), h.field("w", "e", "c").Value)
	require.Equal(t, Int(1), h.field("v", "e", "c").Value)
	wi, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, 2, wi.Players)
}

func TestIdempotencyWindowSurvivesSnapshotAndRestore(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(true, map[string]FieldRule{"c": {Type: KindInt, Policy: PolicyCounter}}))
	window := uint64(DefaultConfig().Window)
	for s := uint64(1); s <= 70; s++ { // spans two chunks
		h.event(act("w", "p", s, opIncr("e", "c", 1)))
	}
	rej := h.event(act("w", "p", 71, opIncr("e", "nope", 1)))
	h.event(act("w", "p", window+3, opIncr("e", "c", 1)))
	h.event(act("w", "q", 1, withExpect(opIncr("e", "c", 1), expectAbsent)))

	g := restored(t, h.snapshotBytes())
	for _, f := range []*FSM{h.f, g} {
		r := f.Apply(1000, EncodeBatch(&Batch{Commands: []Command{
			cmdAction(act("w", "p", 10, opIncr("e", "c", 1))),                          // duplicate
			cmdAction(act("w", "p", 71, opIncr("e", "nope", 1))),                       // duplicate of a rejection
			cmdAction(act("w", "q", 1, withExpect(opIncr("e", "c", 1), expectAbsent))), // duplicate of a conflict
			cmdAction(act("w", "p", 11, opIncr("e", "c", 2))),                          // reused
			cmdAction(act("w", "p", 3, opIncr("e", "c", 1))),                           // expired
			cmdAction(act("w", "p", 72, opIncr("e", "c", 1))),                          // new
		}}))
		require.True(t, r[0].Duplicate)
		require.Equal(t, uint64(10), r[0].Event.Seq)
		require.True(t, r[1].Duplicate)
		require.Equal(t, rej.Seq, r[1].Event.Seq)
		require.Equal(t, CodeUndeclaredField, r[1].Event.Reason)
		require.True(t, r[2].Duplicate)
		require.Equal(t, StatusConflict, r[2].Event.Status)
		require.ErrorIs(t, r[3].Err, ErrSeqReused)
		require.ErrorIs(t, r[4].Err, ErrSeqExpired)
		require.False(t, r[5].Duplicate)
		require.Equal(t, uint64(74), r[5].Event.Seq)
	}
	require.Equal(t, snapshotBytes(t, h.f), snapshotBytes(t, g))
}

func TestActionOnAnUnknownWorldReturnsErrUnknownWorld(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	r := h.do(act("nowhere", "p", 1, opIncr("e", "c", 1)))
	require.ErrorIs(t, r.Err, ErrUnknownWorld)
	require.Equal(t, CodeUnknownWorld, Code(r.Err))
	require.Nil(t, r.Event)
	require.Equal(t, uint64(0), h.worldSeq("w"))
	// Nothing was retained: once the world exists the same seq applies.
	h.createWorld("nowhere", Rules{})
	require.Equal(t, StatusApplied, h.event(act("nowhere", "p", 1, opIncr("e", "c", 1))).Status)
}

func TestApplyBatchAndApplyShareThePayloadHash(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	a := act("w", "p", 1, opSet("e", "x", Float(0.1)), opAdd("e", "s", String("☃")))
	h.index++
	first := h.f.ApplyBatch(h.index, &Batch{Commands: []Command{cmdAction(a)}})[0]
	require.Equal(t, StatusApplied, first.Event.Status)
	r := h.do(a)
	require.True(t, r.Duplicate)
	require.Equal(t, first.Event.Seq, r.Event.Seq)
}

func TestSeqZeroIsRejectedEveryTimeAndNeverRetained(t *testing.T) {
	// Seq 0 marks an empty idempotency slot, so it must not be retained:
	// once it was, a retry was a duplicate on the original node but a new
	// event on a node restored from a snapshot, and the replicas diverged.
	h := newHarness(t)
	h.createWorld("w", Rules{})
	a := act("w", "p", 0, opIncr("e", "c", 1))
	first := h.event(a)
	require.Equal(t, StatusRejected, first.Status)
	require.Equal(t, CodeMalformed, first.Reason)

	g := restored(t, h.snapshotBytes())
	for _, f := range []*FSM{h.f, g} {
		r := f.Apply(100, EncodeBatch(&Batch{Commands: []Command{cmdAction(a), cmdAction(act("w", "p", 1, opIncr("e", "c", 1))), cmdAction(a)}}))
		require.False(t, r[0].Duplicate)
		require.Equal(t, uint64(2), r[0].Event.Seq)
		require.Equal(t, StatusApplied, r[1].Event.Status)
		require.False(t, r[2].Duplicate, "seq 0 is never found in a chunk's empty slot")
		require.Equal(t, uint64(4), r[2].Event.Seq)
	}
	require.Equal(t, snapshotBytes(t, h.f), snapshotBytes(t, g))

	// Past the window seq 0 is simply expired, on every replica alike.
	h.event(act("w", "p", 5000, opIncr("e", "c", 1)))
	require.ErrorIs(t, h.do(a).Err, ErrSeqExpired)
}

// The idempotency windows are most of a busy world's memory (1,024
// records per player); records without pointers keep the garbage
// collector from scanning them on every cycle.
func TestIdempotencyRecordsHoldNoPointers(t *testing.T) {
	typ := reflect.TypeOf(chunk{}).Elem()
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch f.Type.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		default:
			t.Errorf("record.%s is a %s: a window's chunks would hold pointers", f.Name, f.Type.Kind())
		}
	}
}

// A player's window against a plain map of slot to record: after any mix
// of puts (in order, out of order, a window or more apart), lookups agree,
// records lists exactly the map's records in slot order, and a copy taken
// for a snapshot keeps its records while the live player moves on.
func TestPlayerWindowMatchesAMapOfSlots(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		window := rapid.SampledFrom([]int{1024, 1088}).Draw(t, "window")
		g := uint64(1)
		p := &player{gen: g}
		model := map[uint64]record{}
		var frozen *player
		var frozenWant []record
		want := func(m map[uint64]record) []record {
			var out []record
			for slot := range uint64(window) {
				if r, ok := m[slot]; ok {
					out = append(out, r)
				}
			}
			return out
		}
		got := func(p *player) []record {
			var out []record
			p.records(func(r record) { out = append(out, r) })
			return out
		}
		seq := uint64(0)
		for i, n := 0, rapid.IntRange(1, 400).Draw(t, "n"); i < n; i++ {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0: // a snapshot: freeze this generation, write a copy
				frozen, frozenWant = p, want(model)
				g++
				p = p.clone(g)
			case 1: // a jump, possibly back, possibly a window or more
				seq = uint64(rapid.IntRange(1, 4*window).Draw(t, "seq"))
			default:
				seq++
			}
			r := record{seq: seq, payload: uint64(i), worldSeq: uint64(i + 1), status: Status(i % 3), reason: uint32(i % 2)}
			p.put(r, window, g)
			if seq != 0 { // seq 0 is never retained
				model[seq%uint64(window)] = r
			}
			for _, s := range []uint64{seq, seq + uint64(window), max(seq, uint64(window)) - uint64(window), uint64(rapid.IntRange(0, 4*window).Draw(t, "probe"))} {
				m, inModel := model[s%uint64(window)]
				inModel = inModel && m.seq == s && s != 0
				r, ok := p.lookup(s, window)
				if ok != inModel || (ok && r != m) {
					t.Fatalf("lookup(%d) = %+v, %v; the map says %+v, %v", s, r, ok, m, inModel)
				}
			}
		}
		if g, w := got(p), want(model); !slices.Equal(g, w) {
			t.Fatalf("records %v, want %v", g, w)
		}
		if frozen != nil && !slices.Equal(got(frozen), frozenWant) {
			t.Fatalf("the frozen copy changed: %v, want %v", got(frozen), frozenWant)
		}
	})
}
