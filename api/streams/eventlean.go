package streams

import (
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Lean event streams (issue 13). A relay follows a whole world for a long
// time and rebuilds every line it serves, so it asks for the lean form
// (form=lean): each line leaves out what the relay rebuilds exactly
// (wire.LeanEvent: the world, the versions map, a change's version when
// it is the event's seq; an event it could not rebuild exactly goes
// whole), which takes a third of the bytes of a gzipped stream off the
// voters, for less of their CPU (BenchmarkRelayUpstream: the lean line is
// cut from the whole one, wire.AppendLeanLine, which the node encodes
// once for every reader and caches). The answer
// says it with wire.EventFormHeader; a node that does not know form=
// ignores it and answers whole lines without the header, which the relay
// reads as before. Lean streams have fans of their own (Service.leanFans,
// and per view), since their chunks hold other bytes; the lean line is
// cut per fan, not cached per event: only relays ask for it. The form is
// read by spectator.ParseEventForm, which a relay's events route shares.

// appendLean appends ev's lean line, made from its whole line encoded
// here: for events cut to a view, which are copies the node's line cache
// would only thrash on (appendLine).
func appendLean(b []byte, ev *fsm.Event) ([]byte, error) {
	whole, err := appendLine(nil, ev)
	if err != nil {
		return b, err
	}
	return wire.AppendLeanForm(b, whole), nil
}

// leanLine returns ev's lean line, made from its whole line in the node's
// line cache (which players' frames and whole streams share).
func (s *Service) leanLine(ev *fsm.Event) ([]byte, error) {
	whole, err := s.Wire().Line(ev)
	if err != nil {
		return nil, err
	}
	return wire.AppendLeanForm(nil, whole), nil
}

// leanNDJSON returns the lean fans' chunk encoder (fanout.Encoder), from
// the lines cached in wc.
func leanNDJSON(wc *edge.WireCache) fanout.Encoder {
	return func(data []byte, offs []int, evs []*fsm.Event) ([]byte, []int, error) {
		for _, ev := range evs {
			whole, err := wc.Line(ev)
			if err != nil {
				return nil, nil, err
			}
			offs = append(offs, len(data))
			data = wire.AppendLeanForm(data, whole)
		}
		return data, offs, nil
	}
}
