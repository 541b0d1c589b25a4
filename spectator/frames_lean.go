package spectator

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/gsd-dev/gsd/wire"
)

// A watcher that does not write (a spectator) has no use for the fields'
// and entities' versions, and they are a third of a deflated delta's
// bytes on the bench load (the versions are distinct numbers; the rest
// repeats). With versions=false on the watch route, keyframes and deltas
// leave them out: same keys otherwise, so a client decoding into the
// wire types reads version 0.

// CodecLean is or-ed into a codec: keyframes and deltas without versions.
// It goes with CodecJSON and CodecDeflate only.
const CodecLean Codec = 1 << 4

// ParseVersions reads a watch query's versions= ("", "true": frames carry
// versions; "false": lean) against the mode (events frames keep theirs)
// and the subprotocols the client offers (lean is served in JSON and
// deflate, which the route prefers to msgpack when offered).
func ParseVersions(s string, events bool, offered []string) (lean bool, err error) {
	switch s {
	case "", "true":
		return false, nil
	case "false":
	default:
		return false, fmt.Errorf("%w: versions must be true or false, got %q", ErrBadCodec, s)
	}
	if events {
		return false, fmt.Errorf("%w: versions=false goes with mode=state", ErrBadCodec)
	}
	if slices.Contains(offered, wire.SubprotocolMsgpack) && !slices.Contains(offered, wire.SubprotocolJSON) && !slices.Contains(offered, wire.SubprotocolWatchDeflate) {
		return false, fmt.Errorf("%w: versions=false is served in %s and %s, not %s", ErrBadCodec, wire.SubprotocolJSON, wire.SubprotocolWatchDeflate, wire.SubprotocolMsgpack)
	}
	return true, nil
}

// Offered returns the subprotocols of a WebSocket request's
// Sec-WebSocket-Protocol header values.
func Offered(header []string) []string {
	var out []string
	for _, h := range header {
		for p := range strings.SplitSeq(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Lean returns the frame's JSON without versions (keyframes and deltas;
// other frames as they are), made once for all viewers.
func (f *Frame) Lean() []byte {
	f.leanOnce.Do(func() {
		if f.Type == wire.TypeKeyframe || f.Type == wire.TypeWatchDelta {
			f.lean = stripVersions(f.Data)
		} else {
			f.lean = f.Data
		}
	})
	return f.lean
}

// LeanDeflate returns Lean's bytes deflated as Deflate does, made once.
func (f *Frame) LeanDeflate() []byte {
	f.leanDeflateOnce.Do(func() { f.leanDeflated = deflate(f.Lean()) })
	return f.leanDeflated
}

// versionKey is a version's key in a frame's JSON.
const versionKey = `"version":`

// stripVersions returns js without its "version" members. In a frame's
// JSON an unescaped quote only bounds a string, so "version": outside a
// string is a key, and followed by a digit it is a version (a field or
// entity named "version" is followed by an object). The member goes with
// the comma before it, or after it when it comes first.
func stripVersions(js []byte) []byte {
	out := make([]byte, 0, len(js))
	inStr := false
	for i := 0; i < len(js); i++ {
		c := js[i]
		if inStr {
			out = append(out, c)
			switch c {
			case '\\':
				if i+1 < len(js) {
					i++
					out = append(out, js[i])
				}
			case '"':
				inStr = false
			}
			continue
		}
		if c == '"' && bytes.HasPrefix(js[i:], []byte(versionKey)) {
			j := i + len(versionKey)
			if j < len(js) && js[j] >= '0' && js[j] <= '9' {
				for j < len(js) && js[j] >= '0' && js[j] <= '9' {
					j++
				}
				switch {
				case len(out) > 0 && out[len(out)-1] == ',':
					out = out[:len(out)-1]
				case j < len(js) && js[j] == ',':
					j++
				}
				i = j - 1
				continue
			}
		}
		if c == '"' {
			inStr = true
		}
		out = append(out, c)
	}
	return out
}
