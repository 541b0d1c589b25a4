package client

import (
	"fmt"
	"maps"
	"slices"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
)

// A Play's handling of the server's messages on an established
// connection: events and delta frames are checked to follow what was
// received (a gap is an error, a resume's overlap is dropped) and queued
// for Next, which blocks the connection's reader while the buffer is
// full; results and errors answer the pending actions; transfer, ping and
// pong go to their own handling.

// handle acts on one message of an established connection.
func (p *Play) handle(conn *websocket.Conn, m *wire.ServerMsg) error {
	switch m.Type {
	case wire.TypeEvents:
		return p.handleEvents(m.From, m.Seq, m.Events)
	case wire.TypeDelta:
		ev, empty := deltaEvent(p.world, m)
		return p.handleDelta(m.From, ev, empty)
	case wire.TypeResult, wire.TypeError:
		r := actResult{}
		if m.Type == wire.TypeResult && m.Event != nil {
			r.ev = *m.Event
		} else {
			r.err = &Error{Status: m.Status, Code: m.Code, Message: m.Error}
		}
		p.mu.Lock()
		pa := p.pending[m.Seq]
		p.mu.Unlock()
		if pa != nil {
			select {
			case pa.done <- r:
			default:
			}
		}
	case wire.TypeData:
		p.answerData(m)
	case wire.TypeTransfer:
		return p.moved(m)
	case wire.TypePing:
		return p.write(p.ctx, conn, map[string]any{"type": wire.TypePong, "t": m.T})
	case wire.TypePong:
		select {
		case p.pongs <- pong{t: m.T, server: m.ServerTime}:
		default:
		}
	}
	return nil
}

// queue hands it to Next, waiting while the buffer is full.
func (p *Play) queue(it item) error {
	select {
	case p.events <- it:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// cover checks that a frame starting at from follows what was received.
func (p *Play) cover(from uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if from > p.received+1 {
		return fmt.Errorf("%w: a frame from seq %d after seq %d", ErrGap, from, p.received)
	}
	return nil
}

// handleEvents queues an events frame's new events: evs of a frame
// starting at from that covers the world up to seq. A frame without from
// (a server without coverage) carries every event, in order.
func (p *Play) handleEvents(from, seq uint64, evs []wire.Event) error {
	if from == 0 {
		return p.handleEventsUncovered(evs)
	}
	if err := p.cover(from); err != nil {
		return err
	}
	queued := false
	for _, ev := range evs {
		p.mu.Lock()
		last := p.lastEvent
		if ev.Seq <= last {
			p.overlaps++
			p.mu.Unlock()
			continue // already have it (a resume overlapping)
		}
		p.mu.Unlock()
		queued = true
		if err := p.queue(item{ev: ev, covered: min(ev.Seq, seq)}); err != nil {
			return err
		}
		p.mu.Lock()
		p.lastEvent = ev.Seq
		p.received = max(p.received, min(ev.Seq, seq))
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.received = max(p.received, seq)
	p.mu.Unlock()
	if !queued {
		return p.queue(item{covered: seq, skip: true})
	}
	return nil
}

// handleEventsUncovered queues the events of a frame without coverage:
// every event, in order, so a seq that does not follow is a gap.
func (p *Play) handleEventsUncovered(evs []wire.Event) error {
	for _, ev := range evs {
		p.mu.Lock()
		last := p.received
		if ev.Seq <= last {
			p.overlaps++
		}
		p.mu.Unlock()
		switch {
		case ev.Seq <= last:
			continue // already have it (a resume overlapping)
		case ev.Seq != last+1:
			return fmt.Errorf("%w: got seq %d after %d", ErrGap, ev.Seq, last)
		}
		if err := p.queue(item{ev: ev, covered: ev.Seq}); err != nil {
			return err
		}
		p.mu.Lock()
		p.received, p.lastEvent = ev.Seq, ev.Seq
		p.mu.Unlock()
	}
	return nil
}

// handleDelta queues a delta frame starting at from as ev, one event of
// Status DeltaStatus (Next skips it when empty).
func (p *Play) handleDelta(from uint64, ev wire.Event, empty bool) error {
	if err := p.cover(from); err != nil {
		return err
	}
	if err := p.queue(item{ev: ev, covered: ev.Seq, skip: empty}); err != nil {
		return err
	}
	p.mu.Lock()
	p.received = max(p.received, ev.Seq)
	p.mu.Unlock()
	return nil
}

// deltaEvent turns a delta frame of world into one event of Status
// DeltaStatus: its changes, entities and fields sorted; empty when it
// changes nothing.
func deltaEvent(world string, m *wire.ServerMsg) (ev wire.Event, empty bool) {
	ev = wire.Event{World: world, Seq: m.Seq, Priority: "bulk", Status: DeltaStatus}
	for _, id := range slices.Sorted(maps.Keys(m.Entities)) {
		e := m.Entities[id]
		if e.Deleted != 0 {
			ev.Changes = append(ev.Changes, wire.Change{Entity: id, Op: "delete", Version: e.Deleted})
		}
		for _, f := range slices.Sorted(maps.Keys(e.Fields)) {
			v := e.Fields[f].Value
			ev.Changes = append(ev.Changes, wire.Change{Entity: id, Field: f, Op: "set", Value: &v, Version: e.Fields[f].Version})
			if ev.Versions == nil {
				ev.Versions = make(map[string]map[string]uint64)
			}
			if ev.Versions[id] == nil {
				ev.Versions[id] = make(map[string]uint64)
			}
			ev.Versions[id][f] = e.Fields[f].Version
		}
	}
	return ev, len(ev.Changes) == 0
}

// stateEvent is an enter message (docs/PROTOCOL.md, "Fan-out") or a
// resume's keyframe as the event Next returns, of Status status: each
// field of each entity a change with its version (a set field: its
// elements in Set, op "set").
func stateEvent(world string, kf *wire.Keyframe, status string) wire.Event {
	ev := wire.Event{World: world, Seq: kf.Seq, Priority: "bulk", Status: status, Versions: map[string]map[string]uint64{}}
	for _, id := range slices.Sorted(maps.Keys(kf.Entities)) {
		e := kf.Entities[id]
		ev.Versions[id] = make(map[string]uint64, len(e.Fields))
		for _, f := range slices.Sorted(maps.Keys(e.Fields)) {
			wf := e.Fields[f]
			c := wire.Change{Entity: id, Field: f, Op: "set", Value: wf.Value, Version: wf.Version}
			if wf.IsSet {
				c.Value, c.Set = nil, wf.Set
			}
			ev.Changes = append(ev.Changes, c)
			ev.Versions[id][f] = wf.Version
		}
	}
	return ev
}

// leaveEvent is a leave message as Next returns it: one change per entity
// that left, op "leave".
func leaveEvent(world string, l *wire.Leave) wire.Event {
	ev := wire.Event{World: world, Seq: l.Seq, Priority: "bulk", Status: LeaveStatus}
	for _, id := range l.IDs {
		ev.Changes = append(ev.Changes, wire.Change{Entity: id, Op: "leave"})
	}
	return ev
}
