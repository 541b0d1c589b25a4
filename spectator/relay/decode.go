package relay

import (
	"encoding/json"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// streamLine is one line of an upstream's event stream: an event, or the
// error that ends the stream.
type streamLine struct {
	wire.Event
	wire.ErrorBody
}

// decodeEvent returns the event of an event line (fsm.Event.Wire
// reversed): the relay's pipelines apply it as a node's apply the feed.
func decodeEvent(j *wire.Event) (*fsm.Event, error) {
	ev := &fsm.Event{World: j.World, Seq: j.Seq, Index: j.Index, Time: j.Time,
		Player: j.Player, ClientSeq: j.ClientSeq, Reason: j.Reason}
	switch j.Priority {
	case wire.PriorityNameCritical, "":
		ev.Priority = fsm.PriorityCritical
	case wire.PriorityNameBulk:
		ev.Priority = fsm.PriorityBulk
	default:
		return nil, fmt.Errorf("%w: event %d: priority %q", wire.ErrMalformed, j.Seq, j.Priority)
	}
	switch j.Status {
	case wire.StatusApplied:
		ev.Status = fsm.StatusApplied
	case wire.StatusConflict:
		ev.Status = fsm.StatusConflict
	case wire.StatusRejected:
		ev.Status = fsm.StatusRejected
	default:
		return nil, fmt.Errorf("%w: event %d: status %q", wire.ErrMalformed, j.Seq, j.Status)
	}
	if len(j.Changes) > 0 {
		ev.Changes = make([]fsm.Change, len(j.Changes))
	}
	for i, c := range j.Changes {
		fc := fsm.Change{Entity: c.Entity, Field: c.Field, Set: c.Set, Version: c.Version}
		if c.Op != "" {
			op, err := wire.ParseOpKind(c.Op)
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", j.Seq, err)
			}
			fc.Op = op
		}
		if c.Value != nil {
			fc.Value = *c.Value
		}
		if c.Exists != nil {
			fc.Exists = *c.Exists
		}
		ev.Changes[i] = fc
	}
	return ev, nil
}

// parseLine decodes one NDJSON line: an event (its fsm form), or the
// upstream's error line as an *UpstreamError.
func parseLine(line []byte) (*fsm.Event, error) {
	ev, _, err := parseLineWire(line)
	return ev, err
}

// parseLineWire is parseLine that also returns the event as the line
// says it, whose audit leaf a verifying relay hashes (leaves.go).
func parseLineWire(line []byte) (*fsm.Event, *wire.Event, error) {
	var l streamLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, nil, fmt.Errorf("%w: event line: %v", wire.ErrMalformed, err)
	}
	if l.Code != "" {
		return nil, nil, &UpstreamError{Code: l.Code, Message: l.ErrorBody.Error}
	}
	if l.Seq == 0 {
		return nil, nil, nil // not an event (a keep-alive object)
	}
	ev, err := decodeEvent(&l.Event)
	return ev, &l.Event, err
}

// parseLeanLine decodes one line of world's lean stream (form=lean): a
// lean event (wire.LeanEvent), returned with its whole line as the
// upstream's whole stream has it (what the relay serves); an event line
// the lean form sends whole (it names its world: wire.LeanExact), as
// parseLineWire does; or the upstream's error line as an *UpstreamError.
func parseLeanLine(line []byte, world string) (*fsm.Event, *wire.Event, []byte, error) {
	var l struct {
		wire.LeanEvent
		World string `json:"world"`
		wire.ErrorBody
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: lean event line: %v", wire.ErrMalformed, err)
	}
	switch {
	case l.Code != "":
		return nil, nil, nil, &UpstreamError{Code: l.Code, Message: l.ErrorBody.Error}
	case l.World != "":
		ev, wev, err := parseLineWire(line)
		return ev, wev, line, err
	case l.Seq == 0:
		return nil, nil, nil, nil // not an event (a keep-alive object)
	}
	wev := l.LeanEvent.Event(world)
	whole, err := json.Marshal(&wev)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: event %d: %v", wire.ErrMalformed, wev.Seq, err)
	}
	ev, err := decodeEvent(&wev)
	return ev, &wev, append(whole, '\n'), err
}
