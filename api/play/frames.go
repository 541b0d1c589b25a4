package play

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// The play fan-out's events and frames: prepare turns a batch of committed
// events into hubEvents once for every connection of a hub (each event's
// JSON, its coalescable changes, the entities it touches), and the
// encoders write the events and delta frames an outbox hands its writer,
// in JSON by hand from those pre-encoded parts (encodeEvents,
// encodeDelta); the msgpack ones are in hub_msgpack.go.

// hubEvent is one committed event, prepared once for all connections.
type hubEvent struct {
	ev       *fsm.Event
	frame    []byte        // its JSON for an events frame; nil: it coalesces
	delta    []deltaChange // applied bulk changes to coalesce
	entities []string      // the entities it touches, once each

	// Its msgpack for gsd.msgpack.v1 events frames, encoded the first
	// time a connection of that subprotocol takes it (ws_codec.go).
	wire   *edge.WireCache
	mpOnce sync.Once
	mp     []byte
	mpErr  error
}

// msgpack returns the event's msgpack for gsd.msgpack.v1 events frames,
// encoded once for all the connections that take it (its JSON is frame).
func (he *hubEvent) msgpack() ([]byte, error) {
	he.mpOnce.Do(func() { he.mp, he.mpErr = he.wire.Msgpack(he.ev) })
	return he.mp, he.mpErr
}

// deltaChange is one coalescable change: a field's latest value, or an
// entity's delete (field "").
type deltaChange struct {
	entity, field string
	version       uint64
	value         []byte // JSON
	v             fsm.Value
}

// prepare turns events into hubEvents. Critical events, and bulk ones that
// do not reduce to latest values (set-policy adds and removes), go as
// events; applied bulk changes coalesce; other bulk outcomes (conflicts,
// rejections) concern only their player, who has the result.
func (s *Service) prepare(evs []*fsm.Event, coalesce bool) ([]*hubEvent, error) {
	out := make([]*hubEvent, len(evs))
	for i, ev := range evs {
		he := &hubEvent{ev: ev, wire: s.Wire()}
		seen := make(map[string]bool, len(ev.Changes))
		for _, c := range ev.Changes {
			if !seen[c.Entity] {
				seen[c.Entity] = true
				he.entities = append(he.entities, c.Entity)
			}
		}
		if coalesce && ev.Priority == fsm.PriorityBulk && latestValues(ev) {
			if ev.Status == fsm.StatusApplied {
				he.delta = make([]deltaChange, len(ev.Changes))
				for j, c := range ev.Changes {
					v, _ := c.Value.MarshalJSON() // scalars: never fails
					he.delta[j] = deltaChange{entity: c.Entity, field: c.Field, version: c.Version, value: v, v: c.Value}
				}
			}
		} else {
			line, err := s.Wire().Line(ev)
			if err != nil {
				return nil, fmt.Errorf("%w: encode event %d: %v", edge.ErrInternal, ev.Seq, err)
			}
			he.frame = line[:len(line)-1] // without the newline
		}
		out[i] = he
	}
	return out, nil
}

// latestValues reports whether every change of ev is a field's resulting
// value or an entity delete, so the latest one stands for all before it.
func latestValues(ev *fsm.Event) bool {
	for _, c := range ev.Changes {
		if c.Op == fsm.OpAdd || c.Op == fsm.OpRemove || len(c.Set) > 0 {
			return false
		}
	}
	return true
}

// encodeEvents writes {"type":"events","from":F,"seq":S,"events":[...]}
// (a wire.Events) in codec k, from each event's encoding made once.
func encodeEvents(k playCodec, from uint64, f *outFrame) ([]byte, error) {
	if k == codecMsgpack {
		return encodeEventsMsgpack(from, f)
	}
	n := 64
	for _, he := range f.events {
		n += len(he.frame) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"events","from":`...)
	b = strconv.AppendUint(b, from, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, f.covered, 10)
	b = append(b, `,"events":[`...)
	for i, he := range f.events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, he.frame...)
	}
	return append(b, "]}"...), nil
}

// encodeDeltaFrame writes a delta frame in codec k.
func encodeDeltaFrame(k playCodec, from, seq, tick uint64, d pendingDelta) []byte {
	if k == codecMsgpack {
		return encodeDeltaMsgpack(from, seq, tick, d)
	}
	return encodeDelta(from, seq, tick, d)
}

// encodeDelta writes {"type":"delta","from":F,"seq":S,"tick":N,"entities":
// {"e":{"deleted":V,"fields":{"f":{"value":X,"version":V}}}}} (entities are
// wire.DeltaEntity), entities and fields sorted (as d holds them).
func encodeDelta(from, seq, tick uint64, d pendingDelta) []byte {
	n := 96
	for _, e := range d {
		n += len(e.id) + 40
		for _, f := range e.ed.fields {
			n += len(f.field) + len(f.value) + 40
		}
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"delta","from":`...)
	b = strconv.AppendUint(b, from, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"tick":`...)
	b = strconv.AppendUint(b, tick, 10)
	b = append(b, `,"entities":{`...)
	for i, e := range d {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendJSONString(b, e.id)
		b = append(b, `:{`...)
		if e.ed.deleted != 0 {
			b = append(b, `"deleted":`...)
			b = strconv.AppendUint(b, e.ed.deleted, 10)
			b = append(b, ',')
		}
		b = append(b, `"fields":{`...)
		for j, f := range e.ed.fields {
			if j > 0 {
				b = append(b, ',')
			}
			b = wire.AppendJSONString(b, f.field)
			b = append(b, `:{"value":`...)
			b = append(b, f.value...)
			b = append(b, `,"version":`...)
			b = strconv.AppendUint(b, f.version, 10)
			b = append(b, '}')
		}
		b = append(b, "}}"...)
	}
	return append(b, "}}"...)
}
