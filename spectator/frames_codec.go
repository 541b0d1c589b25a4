package spectator

import (
	"bytes"
	"compress/flate"
	"sync"

	"github.com/gsd-dev/gsd/wire"
)

// Codec is how a watch connection carries frames, chosen by its
// WebSocket subprotocol.
type Codec int

// The watch codecs.
const (
	CodecJSON    Codec = iota // text messages, Frame.Data (the default)
	CodecMsgpack              // binary, Frame.Msgpack (gsd.msgpack.v1)
	CodecDeflate              // binary, Frame.Deflate (gsd.watch.deflate.v1)
)

// Subprotocols are the WebSocket subprotocols a watch route offers, in
// its order of preference (coder/websocket takes the first of these the
// client offers): deflate first, then JSON before msgpack as before it.
var Subprotocols = []string{wire.SubprotocolWatchDeflate, wire.SubprotocolJSON, wire.SubprotocolMsgpack}

// CodecOf is the codec of a negotiated subprotocol ("" or an unknown one:
// JSON).
func CodecOf(subprotocol string) Codec {
	switch subprotocol {
	case wire.SubprotocolMsgpack:
		return CodecMsgpack
	case wire.SubprotocolWatchDeflate:
		return CodecDeflate
	}
	return CodecJSON
}

// Encoded returns the frame as codec sends it and whether that is a
// binary message. Each encoding is made once per frame, for all viewers.
func (f *Frame) Encoded(c Codec) ([]byte, bool, error) {
	switch c {
	case CodecJSON | CodecLean:
		return f.Lean(), false, nil
	case CodecDeflate | CodecLean:
		return f.LeanDeflate(), true, nil
	case CodecMsgpack:
		b, err := f.Msgpack()
		return b, true, err
	case CodecMsgpack | CodecLean:
		b, err := f.LeanMsgpack()
		return b, true, err
	case CodecDeflate:
		return f.Deflate(), true, nil
	}
	return f.Data, false, nil
}

// deflaters hold flate writers at BestSpeed: each one's state is large
// (hundreds of kB), and a frame is compressed once, for all its viewers.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // BestSpeed is a valid level
	return w
}}

// Deflate returns the raw DEFLATE (RFC 1951) of the frame's JSON, a whole
// stream (final block included: any inflater reads it to its end), made
// the first time a viewer asks for it, once for all. BestSpeed: per the
// bandwidth ruler (bandwidth_test.go) a higher level saves little on
// frames of a few kB and costs the CPU of every tick.
func (f *Frame) Deflate() []byte {
	f.deflateOnce.Do(func() { f.deflated = deflate(f.Data) })
	return f.deflated
}

// deflate returns the raw DEFLATE of b, a whole stream.
func deflate(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/3 + 64)
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&buf)
	// Writes to a bytes.Buffer do not fail.
	_, _ = w.Write(b)
	_ = w.Close()
	deflaters.Put(w)
	return buf.Bytes()
}
