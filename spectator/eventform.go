package spectator

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gsd-dev/gsd/wire"
)

// The forms of an event stream (docs/API.md, the events route;
// docs/PROTOCOL.md, "Relays"): gzipped (compress=gzip) and lean
// (form=lean). A node's events route (api/streams) and a relay's
// (spectator/relay) read them and answer them here, so that a relay of a
// relay gets what a relay of a node gets.

// EventGzipLevel is an event stream's compressor level. BestSpeed (1)
// matches only within the previous sync flush's block, and a relay's
// stream flushes every linger window (about 10 events): level 2 searches
// the whole 32 KB window for about the same CPU, and sends a fifth fewer
// bytes (api/streams' BenchmarkRelayUpstream: 61.5 → 50.1 B/event; the
// lazy levels 4-9 send 15% fewer again for two to five times the CPU).
// Its compressor takes 0.8 MB per stream (BestSpeed's 1.2 MB).
const EventGzipLevel = 2

// EventForm is the form of an event stream's answer.
type EventForm struct {
	// Gzip: the stream is one gzip member, sync-flushed at each write.
	Gzip bool
	// Lean: lean lines (wire.AppendLeanForm).
	Lean bool
	// asked is whether the request named compress= (the answer varies
	// with Accept-Encoding then).
	asked bool
}

// ParseEventForm reads r's form: compress=gzip gzips when Accept-Encoding
// lists gzip (with a quality above 0; without it the stream is plain, as
// HTTP says), form=lean sends lean lines, form=whole (or none) whole
// ones. Another compress= or form= value is wire.ErrMalformed.
func ParseEventForm(r *http.Request) (EventForm, error) {
	var f EventForm
	q := r.URL.Query()
	switch v := q.Get("compress"); v {
	case "":
	case "gzip":
		f.asked, f.Gzip = true, acceptsGzipCoding(r.Header.Values("Accept-Encoding"))
	default:
		return f, fmt.Errorf("%w: compress must be gzip, got %q", wire.ErrMalformed, v)
	}
	switch v := q.Get("form"); v {
	case "", wire.EventFormWhole:
	case wire.EventFormLean:
		f.Lean = true
	default:
		return f, fmt.Errorf("%w: form must be %s or %s, got %q", wire.ErrMalformed, wire.EventFormLean, wire.EventFormWhole, v)
	}
	return f, nil
}

// SetHeader sets the answer's header fields that say f: Vary when the
// request named compress=, Content-Encoding when gzipped,
// wire.EventFormHeader when lean.
func (f EventForm) SetHeader(h http.Header) {
	if f.asked {
		h.Set("Vary", "Accept-Encoding")
	}
	if f.Gzip {
		h.Set("Content-Encoding", "gzip")
	}
	if f.Lean {
		h.Set(wire.EventFormHeader, wire.EventFormLean)
	}
}

// Label returns f's form and compression as metrics label them: whole or
// lean, none or gzip.
func (f EventForm) Label() (form, compress string) {
	form, compress = wire.EventFormWhole, "none"
	if f.Lean {
		form = wire.EventFormLean
	}
	if f.Gzip {
		compress = "gzip"
	}
	return form, compress
}

// AppendLine appends whole, an event's line, in f's form.
func (f EventForm) AppendLine(dst, whole []byte) []byte {
	if f.Lean {
		return wire.AppendLeanForm(dst, whole)
	}
	return append(dst, whole...)
}

// NewEventGzip returns the compressor of a gzipped event stream written
// to w. It is the stream's own: its state spans the whole stream, which
// is what makes repeated keys and names almost free, so it cannot be
// shared by streams that start at other seqs.
func NewEventGzip(w io.Writer) *gzip.Writer {
	zw, _ := gzip.NewWriterLevel(w, EventGzipLevel) // a valid level: no error
	return zw
}

// acceptsGzipCoding reports whether the Accept-Encoding values list gzip
// with a quality above 0.
func acceptsGzipCoding(values []string) bool {
	for _, part := range values {
		for coding := range strings.SplitSeq(part, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(coding), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && !zeroQ(params) {
				return true
			}
		}
	}
	return false
}

// zeroQ reports whether a coding's parameters say q=0 (not acceptable).
func zeroQ(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimRight(strings.TrimSpace(v), "0")
			return v == "" || v == "." || v == "0" || v == "0."
		}
	}
	return false
}
