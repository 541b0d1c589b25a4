package streams

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Lean event streams (issue 13). A relay follows a whole world for a long
// time and rebuilds every line it serves, so it asks for the lean form
// (form=lean): each line leaves out what the relay rebuilds exactly
// (wire.LeanEvent: the world, the versions map, a change's version when
// it is the event's seq; an event it could not rebuild exactly goes
// whole), which takes a third of the bytes of a gzipped stream off the
// voters, and a quarter of their CPU for it (BenchmarkRelayUpstream). The answer
// says it with wire.EventFormHeader; a node that does not know form=
// ignores it and answers whole lines without the header, which the relay
// reads as before. Lean streams have fans of their own (Service.leanFans,
// and per view), since their chunks hold other bytes; the lean line is
// encoded per fan, not cached per event: only relays ask for it.

// wantsLean reports whether r asks for the lean form: form=lean. Another
// form is malformed.
func wantsLean(r *http.Request) (bool, error) {
	switch v := r.URL.Query().Get("form"); v {
	case "":
		return false, nil
	case wire.EventFormLean:
		return true, nil
	default:
		return false, fmt.Errorf("%w: form must be %s, got %q", fsm.ErrMalformed, wire.EventFormLean, v)
	}
}

// appendLean appends ev's lean line, or its whole line when the lean one
// would not rebuild it exactly (wire.LeanExact: the reader knows a whole
// line by its world).
func appendLean(b []byte, ev *fsm.Event) ([]byte, error) {
	j := edge.EventJSON(ev, false)
	var l []byte
	var err error
	if wire.LeanExact(&j) {
		l, err = json.Marshal(wire.Lean(&j))
	} else {
		l, err = json.Marshal(j)
	}
	if err != nil {
		return b, err
	}
	return append(append(b, l...), '\n'), nil
}

// leanNDJSON is the lean fans' chunk encoder (fanout.Encoder).
func leanNDJSON(data []byte, offs []int, evs []*fsm.Event) ([]byte, []int, error) {
	for _, ev := range evs {
		offs = append(offs, len(data))
		var err error
		if data, err = appendLean(data, ev); err != nil {
			return nil, nil, err
		}
	}
	return data, offs, nil
}
