package relay

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// readFrame reads c's next JSON frame's type and seq.
func readFrame(t *testing.T, c *websocket.Conn) (string, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	var f struct {
		Type string
		Seq  uint64
	}
	require.NoError(t, json.Unmarshal(b, &f), "%s", b)
	return f.Type, f.Seq
}

// A viewer whose socket takes nothing falls behind by its queue (and the
// frame being written) before it skips to a keyframe, as when its frames
// went one by one: the frames a corked batch took from its queue still
// count as queued while they wait for the socket. Counting them not, the
// join's backlog taken in one batch let it fall behind by the queue again.
func TestRelaySlowViewerSkipsAtTheQueuesBound(t *testing.T) {
	const queue, backlog = 6, 4
	events := make(chan string)
	ln, wsURL := corkRelay(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case line := <-events:
				_, _ = io.WriteString(w, line)
				w.(http.Flusher).Flush()
			}
		}
	}, func(cfg *Config) {
		cfg.Pipeline.KeyframeInterval = time.Hour
		cfg.Pipeline.Queue = queue
	})
	gate := wscork.NewGate()
	t.Cleanup(gate.Open) // before the relay closes: its writes wait at the gate
	dialJSON := func() *websocket.Conn {
		c, _, err := websocket.Dial(context.Background(), wsURL, nil)
		require.NoError(t, err)
		c.SetReadLimit(-1)
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	world := joinWorld{entities: 10}
	seq := uint64(0)
	anchor := dialJSON() // keeps up: a delta per event
	typ, _ := readFrame(t, anchor)
	require.Equal(t, wire.TypeKeyframe, typ)
	move := func() { // an event, and the anchor's delta of it
		seq++
		events <- world.event(seq, int(seq), 1)
		for {
			if _, s := readFrame(t, anchor); s >= seq {
				return
			}
		}
	}
	for range backlog {
		move()
	}

	// The slow viewer joins with the keyframe and the backlog; its
	// writer takes them in one batch, whose write waits at the gate.
	ln.HoldAt(gate)
	slow := dialJSON()
	select {
	case <-gate.Waiting():
	case <-time.After(20 * time.Second):
		t.Fatal("the slow viewer's write never came")
	}
	for range 2 * queue {
		move()
	}
	gate.Open()
	frames := 0
	for {
		typ, s := readFrame(t, slow)
		if typ == wire.TypeKeyframe && frames > 0 {
			require.Equal(t, seq, s, "it skipped to the latest state")
			break
		}
		frames++
	}
	require.Equal(t, 1+queue, frames, "the join keyframe, the backlog and what its queue took then: the queue's bound and the frame being written")
}
