package streams

import (
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// Compressed event streams. A follower that reads a world's whole stream
// for a long time (a relay, an analytics consumer) may ask for it gzipped:
// compress=gzip together with Accept-Encoding: gzip. The stream is then one
// gzip member whose every flush is a sync flush, so each window's events
// reach the reader as soon as they are written, as without compression.
// The compressor is the stream's own (its state spans the whole stream,
// which is what makes repeated keys and names almost free), so each
// compressed stream costs the node its compression; the shared fan's
// chunks stay shared and are compressed per stream. That is why it is
// asked for, not negotiated from Accept-Encoding alone: a thousand
// spectators' browsers would each cost the node a compressor.

// gzipLevel is the compressor's level. BestSpeed (1) matches only within
// the previous sync flush's block, and a relay's stream flushes every
// linger window (about 10 events): level 2 searches the whole 32 KB window
// for about the same CPU, and sends a fifth fewer bytes
// (BenchmarkRelayUpstream: 61.5 → 50.1 B/event; the lazy levels 4-9 send
// 15% fewer again for two to five times the CPU). Its compressor takes
// 0.8 MB per stream (BestSpeed's 1.2 MB).
const gzipLevel = 2

// wantsGzip reports whether r asks for a gzipped stream (compress=gzip)
// and accepts it (Accept-Encoding lists gzip). compress= with another
// value is malformed; compress=gzip without gzip in Accept-Encoding is
// served uncompressed, as HTTP says.
func wantsGzip(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("compress")
	switch v {
	case "":
		return false, nil
	case "gzip":
	default:
		return false, fmt.Errorf("%w: compress must be gzip, got %q", fsm.ErrMalformed, v)
	}
	for _, part := range r.Header.Values("Accept-Encoding") {
		for _, coding := range strings.Split(part, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(coding), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && !zeroQ(params) {
				return true, nil
			}
		}
	}
	return false, nil
}

// zeroQ reports whether a coding's parameters say q=0 (not acceptable).
func zeroQ(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimRight(strings.TrimSpace(v), "0")
			return v == "" || v == "." || v == "0" || v == "0."
		}
	}
	return false
}

// gzipOut compresses a stream into out: Write compresses (the compressor
// buffers), Flush and WriteChunk sync-flush the compressor and then flush
// out, so what was written leaves at once. Close ends the gzip member.
type gzipOut struct {
	out streamOut
	zw  *gzip.Writer
}

func newGzipOut(out streamOut) *gzipOut {
	zw, _ := gzip.NewWriterLevel(out, gzipLevel) // a valid level: no error
	return &gzipOut{out: out, zw: zw}
}

func (o *gzipOut) Write(p []byte) (int, error) { return o.zw.Write(p) }

func (o *gzipOut) WriteChunk(c []byte) error {
	if _, err := o.zw.Write(c); err != nil {
		return err
	}
	return o.Flush()
}

func (o *gzipOut) Flush() error {
	if err := o.zw.Flush(); err != nil {
		return err
	}
	return o.out.Flush()
}

func (o *gzipOut) SetWriteDeadline(t time.Time) error { return o.out.SetWriteDeadline(t) }

// Close writes the gzip trailer and flushes it, so a reader sees a whole
// member (and its checksum) when the stream ends.
func (o *gzipOut) Close() error {
	if err := o.zw.Close(); err != nil {
		return err
	}
	return o.out.Flush()
}
