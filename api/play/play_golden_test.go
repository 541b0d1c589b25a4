package play

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/internal/golden"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The play connection's server messages in both codecs (gsd.play.v1 JSON
// and gsd.msgpack.v1): welcome, result, error, ping/pong and transfer as
// playConn.send encodes them; events and delta frames as the outbox
// encodes them; and the close codes and reasons. The encoders are called
// directly, with fixed inputs, where a connection would add random ids.

// goldenPlayCodecs are the codecs and the golden file suffix of each.
var goldenPlayCodecs = []struct {
	name  string
	codec playCodec
}{{"json", codecJSON}, {"msgpack", codecMsgpack}}

// goldenPlayMessage encodes one server message as playConn.send does.
func goldenPlayMessage(k playCodec, v any) ([]byte, error) { return k.marshal(v) }

// goldenPlayFrames prepares evs as a hub does, offers them to an outbox of
// codec k started at pos, ticks and returns the frames the writer sends.
func goldenPlayFrames(t *testing.T, k playCodec, pos, tick uint64, evs []*fsm.Event) [][]byte {
	t.Helper()
	hevs, err := bareServer(nil).prepare(evs, true)
	require.NoError(t, err)
	o := newOutbox(8, k)
	o.start(pos)
	require.Equal(t, len(hevs), o.offer(hevs, nil))
	o.onTick(tick)
	frames, err := o.take()
	require.NoError(t, err)
	return frames
}

// goldenCloseStatus is the close code and reason a connection ending on err sends.
func goldenCloseStatus(err error) (int, string) {
	code, reason := closeStatus(err)
	return int(code), reason
}

// requireGoldenPlay compares JSON messages as one line each in name.jsonl,
// msgpack ones byte for byte as name_N.bin.
func requireGoldenPlay(t *testing.T, codec, name string, msgs [][]byte) {
	t.Helper()
	if codec == "json" {
		golden.Text(t, name+".jsonl", append(bytes.Join(msgs, []byte("\n")), '\n'))
		return
	}
	for i, m := range msgs {
		golden.Binary(t, fmt.Sprintf("%s_%d.bin", name, i), m)
	}
}

func goldenPlayEvent() *wire.Event {
	ev := (&fsm.Event{World: "arena", Seq: 42, Index: 1007, Time: 1_700_000_000_123_456_789, Player: "alice", ClientSeq: 300,
		Priority: fsm.PriorityCritical, Status: fsm.StatusApplied, Changes: []fsm.Change{
			{Entity: "hero", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(83), Version: 42},
			{Entity: "hero", Field: "x", Op: fsm.OpSet, Value: fsm.Float(2.25), Version: 42},
			{Entity: "chest", Op: fsm.OpDelete, Version: 17},
		}}).Wire()
	return &ev
}

func TestGoldenPlayMessages(t *testing.T) {
	msgs := []any{
		wire.Welcome{Type: "welcome", Session: "0123456789abcdef0123456789abcdef", ResumeToken: "tok_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
			World: "arena", Player: "alice", Seq: 41, Epoch: 0,
			Data:  map[string]fsm.Value{"coins": fsm.Int(250), "title": fsm.String("Sir"), "ratio": fsm.Float(1.5), "vip": fsm.Bool(true)},
			UDP:   &wire.UDPInfo{Addr: "10.0.0.1:9000", KeyID: "AAECAwQFBgc=", Key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
			Nodes: []string{"http://10.0.0.2:8080", "http://10.0.0.3:8080"}},
		wire.Welcome{Type: "welcome", Session: "0123456789abcdef0123456789abcdef", World: "arena", Player: "alice", Seq: 50, Epoch: 2},
		wire.Result{Type: "result", Seq: 300, Event: goldenPlayEvent()},
		wire.Result{Type: "error", Seq: 301, Status: 409, Code: fsm.CodeSeqReused, Error: "gsd/fsm: seq reused with a different payload: player alice seq 301"},
		wire.Ping{Type: "ping", T: 1_700_000_000_000_000_000},
		wire.Ping{Type: "pong", T: 1_700_000_000_000_000_000, ServerTime: 1_700_000_000_000_500_000},
		wire.Transfer{Type: "transfer", To: "http://10.0.0.2:8080", Node: "n2", Ticket: "eyJ3IjoiYXJlbmEifQ.c2lnbmF0dXJl"},
		wire.Transfer{Type: "transfer", To: "http://10.0.0.2:8080", Node: "n2"},
	}
	for _, c := range goldenPlayCodecs {
		t.Run(c.name, func(t *testing.T) {
			var out [][]byte
			for _, m := range msgs {
				b, err := goldenPlayMessage(c.codec, m)
				require.NoError(t, err)
				out = append(out, b)
			}
			requireGoldenPlay(t, c.name, "play_messages_"+c.name, out)
		})
	}
}

func TestGoldenPlayFrames(t *testing.T) {
	for _, c := range goldenPlayCodecs {
		t.Run(c.name, func(t *testing.T) {
			frames := goldenPlayFrames(t, c.codec, 10, 4, apitest.GoldenFrameEvents())
			require.Len(t, frames, 2, "an events frame (acked up to the pending delta) and the delta")
			requireGoldenPlay(t, c.name, "play_frames_"+c.name, frames)
		})
	}
}

func TestGoldenPlayCloseStatus(t *testing.T) {
	errs := []error{
		nil,
		errBye,
		edge.ErrUnavailable,
		fmt.Errorf("%w: message of 70000 bytes", edge.ErrTooLarge),
		fmt.Errorf("%w: outbound queue of 256 messages full for 5s", edge.ErrSlowConsumer),
		edge.ErrSessionReplaced,
		edge.ErrIdle,
		fmt.Errorf("%w: the token expired during the connection", edge.ErrUnauthorized),
		fmt.Errorf("%w: the token is for player \"a\", the message names \"b\"", edge.ErrForbidden),
		store.ErrNotLeader,
		fmt.Errorf("%w: alice from world arena: cheating", fsm.ErrBanned),
		fmt.Errorf("%w: session s-1: afk", fsm.ErrSessionKicked),
		fmt.Errorf("%w: the first message must be hello or resume, got %q", fsm.ErrMalformed, "ack"),
		fmt.Errorf("%w: encode: boom", edge.ErrInternal),
		errors.New("gsd/api: something nobody classified"),
		fmt.Errorf("%w: %s", fsm.ErrMalformed, strings.Repeat("é", 80)), // cut at 123 bytes, inside a rune
	}
	var sb strings.Builder
	for _, err := range errs {
		code, reason := goldenCloseStatus(err)
		fmt.Fprintf(&sb, "%d %q\n", code, reason)
	}
	golden.Text(t, "play_close_status.txt", []byte(sb.String()))
}
