package streams

import (
	"compress/gzip"
	"time"

	"github.com/gsd-dev/gsd/spectator"
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
// spectators' browsers would each cost the node a compressor. The request
// is read, and the compressor made, by package spectator
// (spectator.ParseEventForm, spectator.NewEventGzip at
// spectator.EventGzipLevel), which a relay's events route shares.

// gzipOut compresses a stream into out: Write compresses (the compressor
// buffers), Flush and WriteChunk sync-flush the compressor and then flush
// out, so what was written leaves at once. Close ends the gzip member.
type gzipOut struct {
	out streamOut
	zw  *gzip.Writer
}

func newGzipOut(out streamOut) *gzipOut {
	return &gzipOut{out: out, zw: spectator.NewEventGzip(out)}
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
