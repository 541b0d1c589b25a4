package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// maxLinger bounds an event stream's linger, as on a node.
const maxLinger = 5 * time.Second

// Events handles GET /v1/worlds/{world}/events?from=SEQ as a node does
// for the relay's view: the world's events from seq SEQ on (inclusive;
// absent or 0: only new ones), one line each, as the upstream sent them,
// until the viewer goes away or the relay closes; a failure ends the
// stream with an error line. linger=D (up to 5s) waits that long after
// each write. Another relay follows this route (chaining).
func (r *Relay) Events(w http.ResponseWriter, req *http.Request) {
	world := req.PathValue("world")
	from, linger, err := r.eventsQuery(req)
	if err == nil {
		err = r.admit(world)
	}
	if err != nil {
		r.writeError(w, err)
		return
	}
	defer r.leave(world)
	f, err := r.followOf(req.Context(), world)
	if err != nil {
		r.writeError(w, err)
		return
	}
	s := f.subscribe(from)
	if err := f.check(s.from); err != nil {
		r.writeError(w, err)
		return
	}
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	_ = rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	for {
		hs, err := s.nextHeld(ctx)
		if ctx.Err() != nil {
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(r.cfg.WriteTimeout))
		if err != nil {
			_ = json.NewEncoder(w).Encode(body(err))
			_ = rc.Flush()
			return
		}
		n := 0
		for _, h := range hs {
			if _, err := w.Write(h.line); err != nil {
				return
			}
			n += len(h.line)
		}
		if rc.Flush() != nil {
			return
		}
		r.metrics.frames.Inc()
		r.metrics.bytes.Add(float64(n))
		if linger > 0 && !sleep(ctx, linger) {
			return
		}
	}
}

// eventsQuery reads an event stream's from and linger.
func (r *Relay) eventsQuery(req *http.Request) (from uint64, linger time.Duration, err error) {
	if err := r.checkView(req); err != nil {
		return 0, 0, err
	}
	q := req.URL.Query()
	if v := q.Get("from"); v != "" {
		if from, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("%w: from must be a seq, got %q", ErrBadRequest, v)
		}
	}
	if v := q.Get("linger"); v != "" {
		linger, err = time.ParseDuration(v)
		if err != nil || linger < 0 || linger > maxLinger {
			return 0, 0, fmt.Errorf("%w: linger must be a duration from 0 to %s, got %q", ErrBadRequest, maxLinger, v)
		}
	}
	return from, linger, nil
}
