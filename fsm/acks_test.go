package fsm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func cmdAcks(acks ...SessionAck) Command { return Command{Kind: CmdSessionAcks, Acks: acks} }

func TestSessionAcksApplyEveryListedAckAndSkipClosedOrUnknownSessions(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.createWorld("v", Rules{})
	for i := range 3 {
		h.event(act("w", "ann", uint64(i+1), opIncr("e", "c", 1)))
	}
	h.event(act("v", "ann", 1, opIncr("e", "c", 1)))
	h.openSession("w", "s1", "ann", "t")
	h.openSession("w", "s2", "bob", "t")
	h.openSession("v", "s3", "ann", "t")
	// s2 starts at the world's seq 3; its ack of 1 leaves acked alone.
	h.openSession("w", "s4", "cat", "t")
	require.NoError(t, h.session(CmdSessionClose, SessionCmd{World: "w", ID: "s4"}).Err)
	for i := range 2 {
		h.event(act("w", "bob", uint64(i+1), opIncr("e", "c", 1)))
	}

	r := h.apply(cmdAcks(
		SessionAck{World: "w", ID: "s1", Seq: 4},
		SessionAck{World: "w", ID: "s2", Seq: 1},
		SessionAck{World: "v", ID: "s3", Seq: 1},
		SessionAck{World: "w", ID: "s4", Seq: 5},     // closed: skipped
		SessionAck{World: "w", ID: "nobody", Seq: 5}, // unknown: skipped
		SessionAck{World: "gone", ID: "s1", Seq: 1},  // unknown world: skipped
		SessionAck{World: "w", ID: "s1", Seq: 6},     // beyond the world's seq 5: skipped
		SessionAck{World: "v", ID: "s3", Seq: 0},     // a second ack of s3: max wins
	))[0]
	require.NoError(t, r.Err)
	require.Equal(t, 4, r.Acked)
	require.Nil(t, r.Session)

	want := map[string]uint64{"s1": 4, "s2": 3}
	for id, acked := range want {
		s, err := h.f.Session("w", id)
		require.NoError(t, err)
		require.Equal(t, acked, s.Acked, id)
		require.Equal(t, h.time, s.Seen, "%s was seen by the batch", id)
	}
	s3, err := h.f.Session("v", "s3")
	require.NoError(t, err)
	require.Equal(t, uint64(1), s3.Acked)
	_, err = h.f.Session("w", "s4")
	require.ErrorIs(t, err, ErrSessionUnknown, "a skipped ack does not bring a session back")
	// The world's seq stays: acks are bookkeeping.
	require.Equal(t, uint64(5), h.worldSeq("w"))
}

func TestSessionAcksEqualTheSingleAcksTheyBatch(t *testing.T) {
	setup := func() *harness {
		h := newHarness(t)
		h.createWorld("w", Rules{})
		h.event(act("w", "ann", 1, opIncr("e", "c", 1)))
		h.event(act("w", "ann", 2, opIncr("e", "c", 1)))
		h.openSession("w", "s1", "ann", "t")
		h.openSession("w", "s2", "bob", "t")
		h.event(act("w", "ann", 3, opIncr("e", "c", 1)))
		return h
	}
	single, batched := setup(), setup()
	single.apply(
		cmdSession(CmdSessionAck, SessionCmd{World: "w", ID: "s1", Seq: 3}),
		cmdSession(CmdSessionAck, SessionCmd{World: "w", ID: "s2", Seq: 2}),
	)
	batched.apply(cmdAcks(SessionAck{World: "w", ID: "s1", Seq: 3}, SessionAck{World: "w", ID: "s2", Seq: 2}))
	require.Equal(t, single.hash("w"), batched.hash("w"))
	require.Equal(t, single.snapshotBytes(), batched.snapshotBytes())
	for _, h := range []*harness{single, batched} {
		p, err := h.f.Hash("w", 3)
		require.NoError(t, err)
		require.Equal(t, h.hash("w"), p.Hash, "the hash point of the current seq follows the acks")
		require.Equal(t, h.f.worlds["w"].computeMeta(), h.f.worlds["w"].meta)
	}
}

func TestSessionAcksRefuseMalformedBatchesWhole(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e", "c", 1)))
	h.openSession("w", "s1", "ann", "t")
	h.event(act("w", "ann", 2, opIncr("e", "c", 1)))
	before, err := h.f.Session("w", "s1")
	require.NoError(t, err)
	hash := h.hash("w")
	good := SessionAck{World: "w", ID: "s1", Seq: 2} // would move acked from 1
	cases := map[string][]SessionAck{
		"none":           nil,
		"too many":       make([]SessionAck, MaxSessionAcks+1),
		"bad world name": {good, {World: "", ID: "s1", Seq: 1}},
		"bad session id": {good, {World: "w", ID: strings.Repeat("x", MaxNameLen+1), Seq: 1}},
	}
	for name, acks := range cases {
		// ApplyBatch: an oversized batch cannot come through the log.
		r := h.f.ApplyBatch(100, &Batch{Time: 1, Commands: []Command{cmdAcks(acks...)}})[0]
		require.ErrorIs(t, r.Err, ErrMalformed, name)
		require.ErrorIs(t, ValidateAcks(acks), ErrMalformed, name)
	}
	// A malformed one through the log is refused alike.
	r := h.apply(cmdAcks(good, SessionAck{World: "w", ID: "", Seq: 1}))[0]
	require.ErrorIs(t, r.Err, ErrMalformed)
	after, err := h.f.Session("w", "s1")
	require.NoError(t, err)
	require.Equal(t, before, after, "a refused batch changes nothing, not even its valid acks")
	require.Equal(t, hash, h.hash("w"))
	full := make([]SessionAck, MaxSessionAcks)
	for i := range full {
		full[i] = good
	}
	require.NoError(t, ValidateAcks(full), "the limit itself is fine")
}

func TestSessionAcksRoundTripThroughTheCodecUpToTheLimit(t *testing.T) {
	acks := make([]SessionAck, MaxSessionAcks)
	for i := range acks {
		acks[i] = SessionAck{World: fmt.Sprintf("w%d", i%7), ID: fmt.Sprintf("s%d", i), Seq: uint64(i) << 30}
	}
	b := &Batch{Time: 9, Commands: []Command{cmdAcks(acks...), cmdAcks()}}
	enc := EncodeBatch(b)
	got, err := DecodeBatch(enc)
	require.NoError(t, err)
	require.Equal(t, b, got)
	require.Equal(t, enc, EncodeBatch(got))
}

func TestDecodeBatchRefusesMalformedAcks(t *testing.T) {
	cases := map[string][]byte{
		"over the limit": rawBatch(func(e *encoder) {
			e.uvarint(1)
			e.byte(byte(CmdSessionAcks))
			e.uvarint(MaxSessionAcks + 1)
			for range MaxSessionAcks + 1 {
				e.str("w")
				e.str("s")
				e.uvarint(1)
			}
		}),
		"count beyond input": rawBatch(func(e *encoder) {
			e.uvarint(1)
			e.byte(byte(CmdSessionAcks))
			e.uvarint(2)
			e.str("w")
			e.str("s")
		}),
		"truncated seq": rawBatch(func(e *encoder) {
			e.uvarint(1)
			e.byte(byte(CmdSessionAcks))
			e.uvarint(1)
			e.str("w")
			e.str("s")
			e.b = append(e.b, 0x80)
		}),
	}
	for name, p := range cases {
		got, err := DecodeBatch(p)
		require.ErrorIs(t, err, ErrMalformed, name)
		require.Nil(t, got, name)
	}
}
