package play

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func takeOne(t *testing.T, o *outbox) [][]byte {
	t.Helper()
	b, err := o.take()
	require.NoError(t, err)
	return b
}

// The msgpack frames say what the JSON frames say (the msgpack transcoded
// to JSON is the same document), and each event is encoded once for all
// msgpack connections, also when a catching-up connection prepares it again.
func TestMsgpackFramesMatchJSONAndEncodeEachEventOnce(t *testing.T) {
	del := &fsm.Event{Seq: 3, Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "p1", Op: fsm.OpDelete, Version: 1}}}
	flt := &fsm.Event{Seq: 5, Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "p2", Field: "x", Op: fsm.OpSet, Value: fsm.Float(1.5), Version: 5}}}
	s := bareServer(nil)
	evs := []*fsm.Event{critEv(1, "e1"), moveEv(2, "p1", 4), del, critEv(4, "e2"), flt}
	for _, ev := range evs {
		ev.World, ev.Status = "w", fsm.StatusApplied
	}
	hevs, err := s.prepare(evs, true)
	require.NoError(t, err)
	js, m1, m2 := newOutbox(8, codecJSON), newOutbox(8, codecMsgpack), newOutbox(8, codecMsgpack)
	for _, o := range []*outbox{js, m1, m2} {
		require.Equal(t, len(hevs), o.offer(hevs, nil))
		o.onTick(9)
	}
	jf, f1, f2 := takeOne(t, js), takeOne(t, m1), takeOne(t, m2)
	require.Len(t, jf, 2, "an events frame and a delta")
	require.Equal(t, f1, f2)
	for i := range jf {
		tj, err := wire.MsgpackToJSON(f1[i])
		require.NoError(t, err)
		require.JSONEq(t, string(jf[i]), string(tj))
	}
	a, err := hevs[0].msgpack()
	require.NoError(t, err)
	b, err := hevs[0].msgpack()
	require.NoError(t, err)
	require.Same(t, &a[0], &b[0], "encoded once")
	again, err := s.prepare(evs[:1], true)
	require.NoError(t, err)
	c, err := again[0].msgpack()
	require.NoError(t, err)
	require.Same(t, &a[0], &c[0], "a second preparation of the event reuses the wire cache")
	// The JSON line is cached beside it, and the other way round.
	other := critEv(6, "e3")
	other.World, other.Status = "w", fsm.StatusApplied
	m, err := s.Wire().Msgpack(other)
	require.NoError(t, err)
	l, err := s.Wire().Line(other)
	require.NoError(t, err)
	m2b, err := s.Wire().Msgpack(other)
	require.NoError(t, err)
	require.Same(t, &m[0], &m2b[0])
	l2, err := s.Wire().Line(other)
	require.NoError(t, err)
	require.Same(t, &l[0], &l2[0])
}

// exampleEvent is the event of docs/PROTOCOL.md's hex-dumped frame.
func exampleEvent() *fsm.Event {
	return &fsm.Event{World: "arena", Seq: 7, Index: 42, Time: 1700000000000, Player: "ann", ClientSeq: 3,
		Priority: fsm.PriorityCritical, Status: fsm.StatusApplied,
		Changes: []fsm.Change{{Entity: "e1", Field: "x", Op: fsm.OpSet, Value: fsm.Float(2.5), Version: 7}}}
}

// The documented example frame is what the server sends for exampleEvent,
// and a plain msgpack reader decodes it to the documented message.
func TestDocsMsgpackExampleFrame(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)<!-- msgpack-example -->\n```\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "docs/PROTOCOL.md has the example block")
	hexText := strings.Join(strings.Fields(string(m[1])), "")
	want, err := hex.DecodeString(hexText)
	require.NoError(t, err)

	he := &hubEvent{ev: exampleEvent(), wire: new(edge.WireCache)}
	got, err := encodeEventsMsgpack(7, &outFrame{covered: 7, events: []*hubEvent{he}})
	require.NoError(t, err)
	require.Equal(t, want, got, "docs/PROTOCOL.md should show:\n%s", hexDump(got))

	msg := mpDecode(t, want)
	require.Equal(t, "events", msg["type"])
	require.EqualValues(t, 7, msg["from"])
	require.EqualValues(t, 7, msg["seq"])
	ev := msg["events"].([]any)[0].(map[string]any)
	require.Equal(t, "arena", ev["world"])
	require.EqualValues(t, 1700000000000, ev["time"])
	require.Equal(t, "applied", ev["status"])
	ch := ev["changes"].([]any)[0].(map[string]any)
	require.Equal(t, 2.5, ch["value"])
	require.Equal(t, map[string]any{"e1": map[string]any{"x": int64(7)}}, ev["versions"])
}

func hexDump(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		fmt.Fprintf(&sb, "%x\n", b[i:min(i+16, len(b))])
	}
	return sb.String()
}

// benchFrame is a typical events frame: 8 events of 3 changes each.
func benchFrame() []*fsm.Event {
	evs := make([]*fsm.Event, 8)
	for i := range evs {
		seq := uint64(1000 + i)
		evs[i] = &fsm.Event{World: "arena", Seq: seq, Index: 5000 + seq, Time: 1700000000000 + int64(i), Player: "player-17",
			ClientSeq: 300 + seq, Priority: fsm.PriorityCritical, Status: fsm.StatusApplied, Changes: []fsm.Change{
				{Entity: "player-17", Field: "x", Op: fsm.OpSet, Value: fsm.Float(103.25 + float64(i)), Version: seq},
				{Entity: "player-17", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(90 - int64(i)), Version: seq},
				{Entity: "player-17", Field: "state", Op: fsm.OpSet, Value: fsm.String("running"), Version: seq},
			}}
	}
	return evs
}

// clientFrame is what a client decodes an events frame into.
type clientFrame struct {
	Type   string       `json:"type"`
	From   uint64       `json:"from"`
	Seq    uint64       `json:"seq"`
	Events []wire.Event `json:"events"`
}

// BenchmarkEventsFrame compares the JSON and msgpack events frame: encode
// (each event once, then the frame around them), decode (as the Go client
// does) and size.
func BenchmarkEventsFrame(b *testing.B) {
	evs := benchFrame()
	encode := func(k playCodec) []byte {
		f := &outFrame{covered: evs[len(evs)-1].Seq, events: make([]*hubEvent, len(evs))}
		for i, ev := range evs {
			he := &hubEvent{ev: ev}
			if k == codecJSON {
				he.frame, _ = json.Marshal(edge.EventJSON(ev, false))
			} else {
				he.mpOnce.Do(func() { he.mp, he.mpErr = wire.MarshalMsgpack(edge.EventJSON(ev, false)) })
			}
			f.events[i] = he
		}
		out, err := encodeEvents(k, evs[0].Seq, f)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	for _, k := range []playCodec{codecJSON, codecMsgpack} {
		name := "json"
		if k == codecMsgpack {
			name = "msgpack"
		}
		frame := encode(k)
		b.Run(name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				encode(k)
			}
			b.ReportMetric(float64(len(frame)), "bytes/frame")
		})
		b.Run(name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var f clientFrame
				var err error
				if k == codecJSON {
					err = json.Unmarshal(frame, &f)
				} else {
					err = wire.UnmarshalMsgpack(frame, &f)
				}
				if err != nil || len(f.Events) != len(evs) {
					b.Fatal(err)
				}
			}
		})
	}
}
