package relay

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gsd-dev/gsd/spectator"
	"github.com/prometheus/client_golang/prometheus"
)

// maxLinger bounds an event stream's linger, as on a node.
const maxLinger = 5 * time.Second

// Events handles GET /v1/worlds/{world}/events?from=SEQ as a node does
// for the relay's view: the world's events from seq SEQ on (inclusive;
// absent or 0: only new ones), one line each, the upstream's whole lines
// (lean ones rebuilt), until the viewer goes away or the relay closes; a
// failure ends the stream with an error line. linger=D (up to 5s) waits
// that long after each write. compress=gzip (with Accept-Encoding: gzip)
// and form=lean are a node's (spectator.ParseEventForm): another relay
// follows this route so (chaining), and gets the bytes a relay of a node
// gets.
func (r *Relay) Events(w http.ResponseWriter, req *http.Request) {
	world := req.PathValue("world")
	from, linger, form, err := r.eventsQuery(req)
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
	form.SetHeader(h)
	_ = rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	out := r.newEventsOut(w, rc, form)
	defer out.end()
	for {
		hs, err := s.nextHeld(ctx)
		if ctx.Err() != nil {
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(r.cfg.WriteTimeout))
		if err != nil {
			out.writeError(err)
			return
		}
		if out.write(hs) != nil {
			return
		}
		if linger > 0 && !sleep(ctx, linger) {
			return
		}
	}
}

// eventsQuery reads an event stream's from, linger and form.
func (r *Relay) eventsQuery(req *http.Request) (from uint64, linger time.Duration, form spectator.EventForm, err error) {
	if err := r.checkView(req); err != nil {
		return 0, 0, form, err
	}
	q := req.URL.Query()
	if v := q.Get("from"); v != "" {
		if from, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, form, fmt.Errorf("%w: from must be a seq, got %q", ErrBadRequest, v)
		}
	}
	if v := q.Get("linger"); v != "" {
		linger, err = time.ParseDuration(v)
		if err != nil || linger < 0 || linger > maxLinger {
			return 0, 0, form, fmt.Errorf("%w: linger must be a duration from 0 to %s, got %q", ErrBadRequest, maxLinger, v)
		}
	}
	form, err = spectator.ParseEventForm(req)
	return from, linger, form, err
}

// eventsOut writes an event stream's lines in its form (lean ones cut
// from the held whole lines), through the stream's own compressor when
// gzipped, and flushes each write's. The compressor cannot be shared (its
// state spans the stream from where it started), as on a node.
type eventsOut struct {
	r     *Relay
	form  spectator.EventForm
	rc    *http.ResponseController
	sent  *countWriter // the response's bytes, as they leave
	w     io.Writer    // sent, or zw over it
	zw    *gzip.Writer // nil: plain
	buf   []byte       // the line being written
	bytes prometheus.Counter
}

func (r *Relay) newEventsOut(w io.Writer, rc *http.ResponseController, form spectator.EventForm) *eventsOut {
	o := &eventsOut{r: r, form: form, rc: rc, sent: &countWriter{w: w}}
	o.w = o.sent
	if form.Gzip {
		o.zw = spectator.NewEventGzip(o.sent)
		o.w = o.zw
	}
	o.bytes = r.metrics.eventBytes.WithLabelValues(form.Label())
	return o
}

// write sends hs's lines, then flushes: one line at a time into the
// response's buffer or the compressor, so that what a stream keeps is one
// line, not a batch (a viewer from seq 1 reads up to maxBatch at once).
func (o *eventsOut) write(hs []held) error {
	for _, h := range hs {
		o.buf = o.form.AppendLine(o.buf[:0], h.line)
		if _, err := o.w.Write(o.buf); err != nil {
			return err
		}
	}
	return o.flush()
}

// writeError sends err's error line, the stream's last.
func (o *eventsOut) writeError(err error) {
	_ = json.NewEncoder(o.w).Encode(body(err))
	_ = o.flush()
}

// flush sends what was written (a sync flush of the compressor first)
// and counts it.
func (o *eventsOut) flush() error {
	if o.zw != nil {
		if err := o.zw.Flush(); err != nil {
			return err
		}
	}
	err := o.rc.Flush()
	if n := o.sent.take(); n > 0 {
		o.r.metrics.frames.Inc()
		o.r.metrics.bytes.Add(float64(n))
		o.bytes.Add(float64(n))
	}
	return err
}

// end ends the gzip member (its trailer: a reader sees a whole member
// and its checksum when the stream ends).
func (o *eventsOut) end() {
	if o.zw == nil {
		return
	}
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.r.cfg.WriteTimeout))
	if o.zw.Close() == nil {
		_ = o.flush()
	}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// take returns the bytes counted since the last take.
func (c *countWriter) take() int {
	n := c.n
	c.n = 0
	return n
}
