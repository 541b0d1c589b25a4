package play

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/wire"
)

// encodeEventsMsgpack writes the events frame of gsd.msgpack.v1: the map
// {"seq":S,"from":F,"type":"events","events":[...]} around each event's
// msgpack, encoded once per event (hubEvent.msgpack). Its keys are in the
// canonical order of wire.MarshalMsgpack (wire.CompareMsgpackKeys).
func encodeEventsMsgpack(from uint64, f *outFrame) ([]byte, error) {
	evs := make([][]byte, len(f.events))
	n := 48
	for i, he := range f.events {
		b, err := he.msgpack()
		if err != nil {
			return nil, fmt.Errorf("%w: encode event %d: %v", edge.ErrInternal, he.ev.Seq, err)
		}
		evs[i] = b
		n += len(b)
	}
	var buf bytes.Buffer
	buf.Grow(n)
	enc := wire.NewMsgpackEncoder(&buf)
	// Writes to a bytes.Buffer do not fail.
	_ = enc.EncodeMapLen(4)
	_ = enc.EncodeString("seq")
	_ = enc.EncodeUint(f.covered)
	_ = enc.EncodeString("from")
	_ = enc.EncodeUint(from)
	_ = enc.EncodeString("type")
	_ = enc.EncodeString("events")
	_ = enc.EncodeString("events")
	_ = enc.EncodeArrayLen(len(evs))
	for _, b := range evs {
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// encodeDeltaMsgpack writes the delta frame of gsd.msgpack.v1, the map of
// encodeDelta: {"seq":S,"from":F,"tick":N,"type":"delta","entities":{"e":
// {"fields":{"f":{"value":X,"version":V}},"deleted":V}}}, each value a
// msgpack scalar of its own type. Every map's keys, entity ids and field
// names too, are in the canonical order of wire.MarshalMsgpack
// (wire.CompareMsgpackKeys).
func encodeDeltaMsgpack(from, seq, tick uint64, d pendingDelta) []byte {
	var buf bytes.Buffer
	enc := wire.NewMsgpackEncoder(&buf)
	// Writes to a bytes.Buffer do not fail, nor do the values' encodings
	// (prepare took them from applied events, whose values are valid).
	_ = enc.EncodeMapLen(5)
	_ = enc.EncodeString("seq")
	_ = enc.EncodeUint(seq)
	_ = enc.EncodeString("from")
	_ = enc.EncodeUint(from)
	_ = enc.EncodeString("tick")
	_ = enc.EncodeUint(tick)
	_ = enc.EncodeString("type")
	_ = enc.EncodeString("delta")
	_ = enc.EncodeString("entities")
	ents := slices.SortedFunc(slices.Values(d), func(a, b deltaEntry) int { return wire.CompareMsgpackKeys(a.id, b.id) })
	_ = enc.EncodeMapLen(len(ents))
	for _, e := range ents {
		ed := e.ed
		_ = enc.EncodeString(e.id)
		if ed.deleted != 0 {
			_ = enc.EncodeMapLen(2)
		} else {
			_ = enc.EncodeMapLen(1)
		}
		_ = enc.EncodeString("fields")
		fields := ed.fields
		byKey := func(a, b *deltaChange) int { return wire.CompareMsgpackKeys(a.field, b.field) }
		if !slices.IsSortedFunc(fields, byKey) {
			fields = slices.SortedFunc(slices.Values(fields), byKey)
		}
		_ = enc.EncodeMapLen(len(fields))
		for _, fd := range fields {
			_ = enc.EncodeString(fd.field)
			_ = enc.EncodeMapLen(2)
			_ = enc.EncodeString("value")
			_ = enc.Encode(fd.v)
			_ = enc.EncodeString("version")
			_ = enc.EncodeUint(fd.version)
		}
		if ed.deleted != 0 {
			_ = enc.EncodeString("deleted")
			_ = enc.EncodeUint(ed.deleted)
		}
	}
	return buf.Bytes()
}
