package spectator

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"maps"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/golden"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// TestGoldenWatchFrames pins the bytes of the watch frames (wire/watch.go)
// as a team's viewer gets them: a keyframe, a delta with a replace and a
// delete, and an aggregated view; then a keyframe with the world's audit
// checkpoint, as a view that sees every field gets it. A change here is a
// protocol change.
func TestGoldenWatchFrames(t *testing.T) {
	r := fsm.Rules{Fields: map[string]fsm.FieldRule{
		"side":  {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"plan":  {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"x":     {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative},
		"kills": {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"items": {Type: fsm.KindString, Policy: fsm.PolicySet},
	}, Schema: fsm.Schema{
		Access: map[string]fsm.FieldAccess{"plan": {Visible: "team"}},
		Teams:  fsm.TeamRule{From: "field", Key: "side"},
		Views:  map[string]fsm.ViewRule{"kills": {Kind: "sum", Field: "kills", By: "team"}},
	}}
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	g := newGame(t, "w", r.Fields)
	tk := NewTicker(a, NewState("w"), nil)
	for _, ev := range []*fsm.Event{
		g.act("ann", set("ann", "side", fsm.String("red")), set("ann", "plan", fsm.String("rush B")), incr("ann", "kills", 2)),
		g.act("bob", set("bob", "side", fsm.String("red")), set("bob", "x", fsm.Float(1.5)), add("bob", "items", fsm.String("axe"))),
		g.act("cat", set("cat", "side", fsm.String("blue")), set("cat", "plan", fsm.String("hold A")), incr("cat", "kills", 1)),
	} {
		require.NoError(t, tk.Apply(ev))
	}
	tk.Reset()
	red := resolve(t, a, Viewer{Team: "red"})
	var out bytes.Buffer
	k, err := encode("keyframe", tk.State().Seq(), Keyframe(a, tk.State(), nil, red))
	require.NoError(t, err)
	out.Write(append(k.Data, '\n'))

	for _, ev := range []*fsm.Event{
		g.act("bob", set("bob", "x", fsm.Float(2)), set("bob", "x", fsm.Float(2.5))),
		g.act("ann", set("ann", "side", fsm.String("blue"))),
		g.act("cat", del("cat")),
		g.act("bob", incr("bob", "kills", 4)),
	} {
		require.NoError(t, tk.Apply(ev))
	}
	d := tk.Delta(red)
	f, err := encode("delta", d.Seq, d)
	require.NoError(t, err)
	out.Write(append(f.Data, '\n'))
	ag.update(tk.State(), nil, maps.Keys(tk.State().ents))
	fs, err := ag.frames("w", tk.State().Seq())
	require.NoError(t, err)
	out.Write(append(fs[0].frame.Data, '\n'))

	// A keyframe of a view that sees every field, with the world's signed
	// audit checkpoint (the note text; its signature here is made up).
	all, err := NewAccess(fsm.Rules{})
	require.NoError(t, err)
	kc := Keyframe(all, tk.State(), nil, View{})
	AddCheckpoint(kc, all, func(string, uint64) []byte {
		return []byte("w\n7\nlP4Scs5eZPIHH0H/g0l+mODzoYYjFKysLZh91sJDZfs=\n\n— gsd-audit-2026 8MkayKa9+9rNmaKFlag7tVKShO64vdf2I2yqQpdPgrLvcqDw3GYJX5KH9FwCY6S2GdsIFxfV3xsAyeMidT3aGcQ56Ak=\n")
	})
	k, err = encode("keyframe", kc.Seq, kc)
	require.NoError(t, err)
	out.Write(append(k.Data, '\n'))
	golden.Text(t, "watch_frames.ndjson", out.Bytes())
}

func TestFramesHaveAMsgpackFormWithTheSameContent(t *testing.T) {
	for _, line := range bytes.Split(bytes.TrimSpace(golden.Read(t, "watch_frames.ndjson")), []byte("\n")) {
		var head struct{ Type string }
		require.NoError(t, json.Unmarshal(line, &head))
		var v any
		switch head.Type {
		case wire.TypeKeyframe:
			v = &wire.Keyframe{}
		case wire.TypeWatchDelta:
			v = &wire.WatchDelta{}
		default:
			v = &wire.ViewFrame{}
		}
		require.NoError(t, json.Unmarshal(line, v))
		f, err := encode(head.Type, 0, v)
		require.NoError(t, err)
		mp, err := f.Msgpack()
		require.NoError(t, err)
		again, err := f.Msgpack()
		require.NoError(t, err)
		require.Same(t, &mp[0], &again[0], "made once")
		asJSON, err := wire.MsgpackToJSON(mp)
		require.NoError(t, err)
		require.JSONEq(t, string(line), string(asJSON))
		t.Logf("%s: %d bytes JSON, %d msgpack", head.Type, len(line), len(mp))
	}
}

// TestGoldenLeanMsgpackFrames pins the msgpack bytes, without versions
// (versions=false), of the golden watch frames: hex, a frame a line.
func TestGoldenLeanMsgpackFrames(t *testing.T) {
	var out bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace(golden.Read(t, "watch_frames.ndjson")), []byte("\n")) {
		var head struct{ Type string }
		require.NoError(t, json.Unmarshal(line, &head))
		var v any
		switch head.Type {
		case wire.TypeKeyframe:
			v = &wire.Keyframe{}
		case wire.TypeWatchDelta:
			v = &wire.WatchDelta{}
		default:
			v = &wire.ViewFrame{}
		}
		require.NoError(t, json.Unmarshal(line, v))
		f, err := encode(head.Type, 0, v)
		require.NoError(t, err)
		b, binary, err := f.Encoded(CodecMsgpack | CodecLean)
		require.NoError(t, err)
		require.True(t, binary)
		out.WriteString(hex.EncodeToString(b) + "\n")
	}
	golden.Text(t, "watch_frames_lean.msgpack.hex", out.Bytes())
}
