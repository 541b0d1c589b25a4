package client

import (
	"bufio"
	"os"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// withoutChanges is ev as HeadersOnly delivers it.
func withoutChanges(ev wire.Event) wire.Event {
	ev.Changes, ev.Versions = nil, nil
	return ev
}

// On the recorded frames (the server's golden frames and the bench's), a
// Play with HeadersOnly queues the same events, with the same coverage,
// as one that decodes them whole, less their changes.
func TestHeadersOnlyQueuesWhatTheWholeDecodeQueuesLessTheChanges(t *testing.T) {
	for _, k := range []playCodec{{}, {msgpack: true}} {
		frames := [][]byte{}
		for _, n := range []int{1, 10} {
			ev, delta := framesFor(t, k, n)
			frames = append(frames, ev, delta)
		}
		// An empty delta and a progress frame: only coverage.
		for _, s := range []string{`{"type":"delta","from":5,"seq":7,"tick":20,"entities":{}}`, `{"type":"events","from":10,"seq":12,"events":[]}`} {
			b, err := k.marshal(jsonToAny(t, s))
			require.NoError(t, err)
			frames = append(frames, b)
		}
		f, err := os.Open("../api/play/testdata/golden/play_frames_json.jsonl")
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			b := []byte(sc.Text())
			if k.msgpack {
				b, err = k.marshal(jsonToAny(t, sc.Text()))
				require.NoError(t, err)
			}
			frames = append(frames, b)
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
		require.Greater(t, len(frames), 4)
		whole, lean := benchPlay(false, k), benchPlay(true, k)
		for i, b := range frames {
			var h headerMsg
			require.NoError(t, whole.decode(k.messageType(), b, &h))
			start := max(h.From, 1) - 1
			want, got := whole.frame(t, b, start, nil), lean.frame(t, b, start, nil)
			require.NotEmpty(t, want, "frame %d", i)
			require.Len(t, got, len(want), "frame %d", i)
			for j := range want {
				require.Equal(t, want[j].covered, got[j].covered, "frame %d item %d", i, j)
				require.Equal(t, want[j].skip, got[j].skip, "frame %d item %d", i, j)
				require.Equal(t, withoutChanges(want[j].ev), got[j].ev, "frame %d item %d", i, j)
				if !want[j].skip {
					require.NotEmpty(t, want[j].ev.Changes, "the whole decode has changes to leave out")
				}
			}
		}
		whole.cancel()
		lean.cancel()
	}
}

// With HeadersOnly, every message but events and deltas is decoded
// whole: a result answers its action with the event's changes.
func TestHeadersOnlyAnswersActionsWithWholeEvents(t *testing.T) {
	forEachEncoding(t, func(t *testing.T, enc string) {
		k, err := codecFor(enc)
		require.NoError(t, err)
		p := benchPlay(true, k)
		defer p.cancel()
		pa := &pendingAct{done: make(chan actResult, 1)}
		p.pending = map[uint64]*pendingAct{7: pa}
		b, err := k.marshal(jsonToAny(t, `{"type":"result","seq":7,"event":{"world":"w","seq":3,"player":"ann","client_seq":7,"status":"applied",`+
			`"versions":{"e":{"x":3}},"changes":[{"entity":"e","field":"x","op":"set","value":1,"version":3}]}}`))
		require.NoError(t, err)
		require.Empty(t, p.frame(t, b, 0, nil))
		r := <-pa.done
		require.NoError(t, r.err)
		x := wire.Int(1)
		require.Equal(t, []wire.Change{{Entity: "e", Field: "x", Op: "set", Value: &x, Version: 3}}, r.ev.Changes)
		require.Equal(t, map[string]map[string]uint64{"e": {"x": 3}}, r.ev.Versions)
	})
}

// A gap is found by seq with HeadersOnly as without it, in frames with
// coverage and without; an undecodable frame ends the connection.
func TestHeadersOnlyFindsGapsAndRefusesUndecodableFrames(t *testing.T) {
	for _, tc := range []struct{ name, frame string }{
		{"covered", `{"type":"events","from":5,"seq":5,"events":[{"seq":5}]}`},
		{"uncovered", `{"type":"events","events":[{"seq":5}]}`},
		{"delta", `{"type":"delta","from":5,"seq":6,"entities":{"e":{"fields":{}}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := benchPlay(true, playCodec{})
			defer p.cancel()
			p.received, p.lastEvent = 3, 3
			require.ErrorIs(t, p.message(nil, p.codec.messageType(), []byte(tc.frame)), ErrGap)
		})
	}
	p := benchPlay(true, playCodec{})
	defer p.cancel()
	var ce *CloseError
	require.ErrorAs(t, p.message(nil, p.codec.messageType(), []byte(`{"type":"events","events":[{"seq":"one"}]}`)), &ce)
	require.Equal(t, 4400, ce.Code)
}
