package spectator

import (
	"bytes"
	"fmt"
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
const CodecLean Codec = 1 << 4

// ParseVersions reads a watch query's versions= ("", "true": frames carry
// versions; "false": lean) against the mode (events frames keep theirs).
// Lean is served in every codec; offered (the subprotocols the client
// offers) is no longer consulted.
func ParseVersions(s string, events bool, _ []string) (lean bool, err error) {
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

// LeanMsgpack returns the frame in the binary codec without versions
// (keyframes and deltas; other frames as Msgpack has them), made once for
// all viewers: Msgpack's bytes but the "version" entries, with the keys
// of Lean's JSON.
func (f *Frame) LeanMsgpack() ([]byte, error) {
	f.leanMsgpackOnce.Do(func() {
		if l, ok := leanWire(f.value()); ok {
			f.leanMsgpack, f.leanMsgpackErr = wire.MarshalMsgpack(l)
		} else {
			f.leanMsgpack, f.leanMsgpackErr = f.Msgpack()
		}
	})
	return f.leanMsgpack, f.leanMsgpackErr
}

// The wire forms of keyframes and deltas (wire/watch.go) without their
// versions, for LeanMsgpack alone: msgpack writes a struct by its json
// tags, and a client decodes these into the wire types (version 0).
// TestLeanWireFormsAreTheWiresWithoutVersions holds them to wire's.
type (
	leanField struct {
		Value *wire.Value  `json:"value,omitempty"`
		Set   []wire.Value `json:"set,omitempty"`
		IsSet bool         `json:"is_set,omitempty"`
	}
	leanEntity struct {
		Replace bool                 `json:"replace,omitempty"`
		Deleted bool                 `json:"deleted,omitempty"`
		Fields  map[string]leanField `json:"fields,omitempty"`
	}
	leanKeyframe struct {
		Type       string                `json:"type"`
		World      string                `json:"world"`
		Seq        uint64                `json:"seq"`
		Time       int64                 `json:"time"`
		Entities   map[string]leanEntity `json:"entities"`
		Whole      bool                  `json:"whole,omitempty"`
		Checkpoint string                `json:"checkpoint,omitempty"`
	}
	leanDelta struct {
		Type     string                `json:"type"`
		World    string                `json:"world"`
		From     uint64                `json:"from"`
		Seq      uint64                `json:"seq"`
		Time     int64                 `json:"time"`
		Entities map[string]leanEntity `json:"entities"`
	}
)

// leanWire returns a keyframe's or delta's wire value without versions,
// and false for any other value.
func leanWire(v any) (any, bool) {
	switch v := v.(type) {
	case *wire.Keyframe:
		return &leanKeyframe{Type: v.Type, World: v.World, Seq: v.Seq, Time: v.Time, Entities: leanEntities(v.Entities),
			Whole: v.Whole, Checkpoint: v.Checkpoint}, true
	case *wire.WatchDelta:
		return &leanDelta{Type: v.Type, World: v.World, From: v.From, Seq: v.Seq, Time: v.Time, Entities: leanEntities(v.Entities)}, true
	}
	return nil, false
}

func leanEntities(es map[string]wire.WatchEntity) map[string]leanEntity {
	if es == nil {
		return nil
	}
	out := make(map[string]leanEntity, len(es))
	for id, e := range es {
		le := leanEntity{Replace: e.Replace, Deleted: e.Deleted}
		if e.Fields != nil {
			le.Fields = make(map[string]leanField, len(e.Fields))
			for name, f := range e.Fields {
				le.Fields[name] = leanField{Value: f.Value, Set: f.Set, IsSet: f.IsSet}
			}
		}
		out[id] = le
	}
	return out
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
