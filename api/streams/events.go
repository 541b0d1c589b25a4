package streams

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
)

// Events handles GET /v1/worlds/{world}/events?from=SEQ: an NDJSON stream of
// the world's committed events from seq SEQ on (inclusive; absent or 0 means
// only new events), one wire.Event per line, flushed per batch the store
// hands out, until the client goes away or the server closes. Any node
// serves it from its own archive. A gap found mid-stream ends the stream with
// a last line holding an ErrorBody. linger=DURATION (up to 5s) waits that
// long after each flush, so that events gather into fewer, larger writes.
//
// Each caller sees the events as its view may (views.go): a caller who may
// not see a field gets no trace of it (values, set elements, versions), an
// event it may see nothing of is left out, and a delayed view gets each
// event only once it is older than the delay. view=CLASS names a viewer
// class; with auth off, player=P the viewing player (edge.Sight).
// compress=gzip with Accept-Encoding: gzip gzips the stream (eventgzip.go);
// form=lean sends lean lines (eventlean.go), form=whole whole ones (as
// without form=); spectator.ParseEventForm reads both, as a relay does.
func (s *Service) Events(w http.ResponseWriter, r *http.Request) {
	var linger time.Duration
	var form spectator.EventForm
	from, err := edge.ParseSeq(r, "from")
	if err == nil {
		linger, err = parseLinger(r)
	}
	if err == nil {
		form, err = spectator.ParseEventForm(r)
	}
	gz, lean := form.Gzip, form.Lean
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	if !s.OpenStream() {
		s.WriteError(w, edge.ErrUnavailable, false)
		return
	}
	defer s.StreamDone()
	sub, err := s.Backend().Subscribe(r.PathValue("world"), from)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	v, err := s.sightOf(r, r.PathValue("world"), lean)
	if err == nil && v != nil {
		if err = s.acquire(v); err == nil {
			defer s.release(v)
		}
	}
	if err == nil && from == 0 && v != nil && v.events != nil {
		// Only new events: from after the view's prepared events, which
		// may have been seeded with a world state newer than sub's start
		// (an event older than them costs the stream a replay of its own).
		sub, err = s.Backend().Subscribe(r.PathValue("world"), 0)
	}
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	s.Metrics().Streams.Inc()
	defer s.Metrics().Streams.Dec()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.Closing(), cancel)()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	form.SetHeader(h)
	var out streamOut
	if raw, end, ok := hijackStream(w, r, rc, s.Config().StreamWriteTimeout, cancel); ok {
		defer end()
		out = raw
	} else {
		// The http.Server's WriteTimeout would cut a long stream; each
		// write gets its own deadline instead (ignored where unsupported).
		_ = rc.SetWriteDeadline(time.Time{})
		w.WriteHeader(http.StatusOK)
		if err := rc.Flush(); err != nil {
			return
		}
		out = httpOut{w: w, rc: rc}
	}
	out, closeOut := s.output(out, gz)
	defer closeOut() // before the body's end
	st := &eventStream{s: s, out: out, world: r.PathValue("world"), linger: linger, next: sub.Position(), v: v, lean: lean}
	st.serve(ctx, sub)
}

// output returns the stream's output over the connection's out: counted
// (the bytes sent, compressed ones), then gzipped when gz. end ends what
// the stream wrote (the gzip member's trailer); call it before the body's
// end.
func (s *Service) output(out streamOut, gz bool) (_ streamOut, end func()) {
	out = &countedOut{streamOut: out, to: s.Metrics().StreamBytes}
	if !gz {
		return out, func() {}
	}
	zo := newGzipOut(out)
	return zo, func() { _ = zo.Close() }
}

// maxLinger bounds an event stream's linger.
const maxLinger = 5 * time.Second

// parseLinger reads the optional linger query parameter: a Go duration
// ("100ms") in [0, maxLinger].
func parseLinger(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("linger")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxLinger {
		return 0, fmt.Errorf("%w: linger must be a duration from 0 to %s, got %q", fsm.ErrMalformed, maxLinger, v)
	}
	return d, nil
}
