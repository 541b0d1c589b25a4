package edge

import (
	"encoding/json"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// WireCache keeps the NDJSON line of recent events, so a thousand streams
// following one world encode each event once, not once per stream. It is
// keyed by the event's identity (the feed hands every subscriber the same
// *fsm.Event), in a fixed ring: a collision just encodes again.
type WireCache struct {
	stripes [64]sync.Mutex
	slots   [1 << 14]wireSlot
}

type wireSlot struct {
	ev   *fsm.Event
	line []byte // nil: not encoded yet
	mp   []byte // msgpack (gsd.msgpack.v1); nil: not encoded yet
}

// Line returns ev's NDJSON line (JSON and a newline). The returned slice is
// shared: callers must not modify it.
func (c *WireCache) Line(ev *fsm.Event) ([]byte, error) {
	i := (xxhash.Sum64String(ev.World) + ev.Seq) % uint64(len(c.slots))
	mu := &c.stripes[i%uint64(len(c.stripes))]
	mu.Lock()
	if s := c.slots[i]; s.ev == ev && s.line != nil {
		mu.Unlock()
		return s.line, nil
	}
	mu.Unlock()
	b, err := json.Marshal(EventJSON(ev, false))
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	mu.Lock()
	if c.slots[i].ev == ev {
		c.slots[i].line = b
	} else {
		c.slots[i] = wireSlot{ev: ev, line: b}
	}
	mu.Unlock()
	return b, nil
}

// Msgpack returns ev's msgpack encoding for gsd.msgpack.v1 events frames,
// cached like line. The returned slice is shared: callers must not modify it.
func (c *WireCache) Msgpack(ev *fsm.Event) ([]byte, error) {
	i := (xxhash.Sum64String(ev.World) + ev.Seq) % uint64(len(c.slots))
	mu := &c.stripes[i%uint64(len(c.stripes))]
	mu.Lock()
	if s := c.slots[i]; s.ev == ev && s.mp != nil {
		mu.Unlock()
		return s.mp, nil
	}
	mu.Unlock()
	b, err := wire.MarshalMsgpack(EventJSON(ev, false))
	if err != nil {
		return nil, err
	}
	mu.Lock()
	if c.slots[i].ev == ev {
		c.slots[i].mp = b
	} else {
		c.slots[i] = wireSlot{ev: ev, mp: b}
	}
	mu.Unlock()
	return b, nil
}

// NDJSON is the event streams' chunk encoder (fanout.Encoder): each
// event's NDJSON line.
func (c *WireCache) NDJSON(data []byte, offs []int, evs []*fsm.Event) ([]byte, []int, error) {
	for _, ev := range evs {
		line, err := c.Line(ev)
		if err != nil {
			return nil, nil, err
		}
		offs = append(offs, len(data))
		data = append(data, line...)
	}
	return data, offs, nil
}
