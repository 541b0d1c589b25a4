package client

import (
	"fmt"
	"sort"

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
		if m.From != 0 {
			return p.handleEvents(m)
		}
		for _, ev := range m.Events { // a server without coverage: every event, in order
			p.mu.Lock()
			last := p.received
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
	case wire.TypeDelta:
		return p.handleDelta(m)
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

// handleEvents queues an events frame's new events; the frame covers the
// world up to m.Seq.
func (p *Play) handleEvents(m *wire.ServerMsg) error {
	if err := p.cover(m.From); err != nil {
		return err
	}
	queued := false
	for _, ev := range m.Events {
		p.mu.Lock()
		last := p.lastEvent
		p.mu.Unlock()
		if ev.Seq <= last {
			continue // already have it (a resume overlapping)
		}
		queued = true
		if err := p.queue(item{ev: ev, covered: min(ev.Seq, m.Seq)}); err != nil {
			return err
		}
		p.mu.Lock()
		p.lastEvent = ev.Seq
		p.received = max(p.received, min(ev.Seq, m.Seq))
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.received = max(p.received, m.Seq)
	p.mu.Unlock()
	if !queued {
		return p.queue(item{covered: m.Seq, skip: true})
	}
	return nil
}

// handleDelta queues a delta frame as one event of Status DeltaStatus.
func (p *Play) handleDelta(m *wire.ServerMsg) error {
	if err := p.cover(m.From); err != nil {
		return err
	}
	ev := wire.Event{World: p.world, Seq: m.Seq, Priority: "bulk", Status: DeltaStatus}
	ids := make([]string, 0, len(m.Entities))
	for id := range m.Entities {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := m.Entities[id]
		if e.Deleted != 0 {
			ev.Changes = append(ev.Changes, wire.Change{Entity: id, Op: "delete", Version: e.Deleted})
		}
		names := make([]string, 0, len(e.Fields))
		for f := range e.Fields {
			names = append(names, f)
		}
		sort.Strings(names)
		for _, f := range names {
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
	if err := p.queue(item{ev: ev, covered: m.Seq, skip: len(ev.Changes) == 0}); err != nil {
		return err
	}
	p.mu.Lock()
	p.received = max(p.received, m.Seq)
	p.mu.Unlock()
	return nil
}
