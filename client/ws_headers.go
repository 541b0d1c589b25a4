package client

import (
	"context"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
)

// A Play with PlayOptions.HeadersOnly decodes the frames that come by the
// thousand (events and deltas) without what its user does not look at:
// decoding an event's changes and versions, or a delta's fields, builds
// maps, slices and values. Frames are read by hand (ws_scan.go,
// ws_scanmsgpack.go); those the hand-rolled readers give up on are
// decoded into the small structs below, whose missing keys both decoders
// skip without building anything. Every other message is decoded whole,
// as without the option. BenchmarkPlayFrame measures both ways.

// headerMsg is an events or delta frame without the events' changes and
// versions and without the delta's fields.
type headerMsg struct {
	Type   string        `json:"type"`
	Seq    uint64        `json:"seq"`
	From   uint64        `json:"from"`
	Events []headerEvent `json:"events"`
	// Entities names the entities a delta changes; the server sends an
	// entity only with a change (a field set or a delete).
	Entities map[string]struct{} `json:"entities"`
}

// headerEvent is a wire.Event without Versions and Changes.
type headerEvent struct {
	World     string `json:"world"`
	Seq       uint64 `json:"seq"`
	Index     uint64 `json:"index"`
	Time      int64  `json:"time"`
	Player    string `json:"player"`
	ClientSeq uint64 `json:"client_seq"`
	Priority  string `json:"priority"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Duplicate bool   `json:"duplicate"`
}

func (h *headerEvent) event() wire.Event {
	return wire.Event{World: h.World, Seq: h.Seq, Index: h.Index, Time: h.Time, Player: h.Player,
		ClientSeq: h.ClientSeq, Priority: h.Priority, Status: h.Status, Reason: h.Reason, Duplicate: h.Duplicate}
}

// readMessage reads one message of an established connection and handles
// it.
func (p *Play) readMessage(conn *websocket.Conn) error {
	typ, b, err := conn.Read(context.Background()) // connect closes conn when the Play ends
	if err != nil {
		return closeErr(err)
	}
	return p.message(conn, typ, b)
}

// message decodes and handles one message of WebSocket type typ.
func (p *Play) message(conn *websocket.Conn, typ websocket.MessageType, b []byte) error {
	if p.opts.HeadersOnly {
		done, err := p.handleHeaders(typ, b)
		if done || err != nil {
			return err
		}
	}
	var m wire.ServerMsg
	if err := p.decode(typ, b, &m); err != nil {
		return err
	}
	switch m.Type {
	case wire.TypeEnter:
		var kf wire.Keyframe
		if err := p.decode(typ, b, &kf); err != nil {
			return err
		}
		status := EnterStatus
		if kf.Whole {
			status = AreaStatus
		}
		return p.queue(item{ev: stateEvent(p.world, &kf, status)})
	case wire.TypeLeave:
		var l wire.Leave
		if err := p.decode(typ, b, &l); err != nil {
			return err
		}
		return p.queue(item{ev: leaveEvent(p.world, &l)})
	}
	return p.handle(conn, &m)
}

// handleHeaders decodes b as a headerMsg and handles it when it is an
// events or delta frame (done).
func (p *Play) handleHeaders(typ websocket.MessageType, b []byte) (done bool, err error) {
	if typ == p.codec.messageType() {
		scan := scanFrame
		if p.codec.msgpack {
			scan = scanMsgpack
		}
		h, complete := scan(b, p.world, p.scratch)
		if complete {
			p.scratch = h.evs
			switch h.typ {
			case wire.TypeEvents:
				return true, p.handleEvents(h.from, h.seq, h.evs)
			case wire.TypeDelta:
				ev := wire.Event{World: p.world, Seq: h.seq, Priority: "bulk", Status: DeltaStatus}
				return true, p.handleDelta(h.from, ev, !h.entities)
			case wire.TypeEnter, wire.TypeLeave:
				return true, nil // state, which a headers-only player does not keep
			}
			return false, nil // another message: decoded whole
		}
	}
	var h headerMsg
	if err := p.decode(typ, b, &h); err != nil {
		return true, err
	}
	switch h.Type {
	case wire.TypeEvents:
		evs := make([]wire.Event, len(h.Events))
		for i := range h.Events {
			evs[i] = h.Events[i].event()
		}
		return true, p.handleEvents(h.From, h.Seq, evs)
	case wire.TypeDelta:
		ev := wire.Event{World: p.world, Seq: h.Seq, Priority: "bulk", Status: DeltaStatus}
		return true, p.handleDelta(h.From, ev, len(h.Entities) == 0)
	case wire.TypeEnter, wire.TypeLeave:
		return true, nil
	}
	return false, nil
}
