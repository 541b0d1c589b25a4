package relay

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// readUntil reads c's deflated frames until one at seq last, and returns
// them as sent.
func readUntil(t *testing.T, c *websocket.Conn, last uint64) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out [][]byte
	for {
		typ, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, typ)
		out = append(out, b)
		var f struct{ Seq uint64 }
		require.NoError(t, json.NewDecoder(flate.NewReader(bytes.NewReader(b))).Decode(&f))
		if f.Seq == last {
			return out
		}
	}
}

// corkRelay runs a relay of the upstream stream (and no views) whose
// server's connections record their writes, ticking every 10 ms and with
// cfg adjusted by opt, until the test ends; it returns the listener and
// arena's watch URL.
func corkRelay(t *testing.T, stream http.HandlerFunc, opt func(*Config)) (*wscork.RecordingListener, string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/views") {
			http.NotFound(w, r)
			return
		}
		stream(w, r)
	}))
	t.Cleanup(func() {
		up.CloseClientConnections()
		up.Close()
	})
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.Pipeline.Tick = 10 * time.Millisecond
	opt(&cfg)
	r, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(r.Handler())
	ln := &wscork.RecordingListener{Listener: ts.Listener}
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		r.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	return ln, "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/worlds/arena/watch"
}

// A spectator joining a view with a backlog (the join keyframe and the
// deltas since) gets it in one socket write after the handshake's, byte
// for byte what a spectator who watched from the start got.
func TestRelayWatchSendsAJoinersBacklogInOneWrite(t *testing.T) {
	ln, wsURL := corkRelay(t, joinUpstream, func(cfg *Config) { cfg.Pipeline.KeyframeInterval = time.Hour })
	wsURL += "?versions=false"
	dialDeflate := func() *websocket.Conn {
		c, _, err := websocket.Dial(context.Background(), wsURL, &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolWatchDeflate}})
		require.NoError(t, err)
		c.SetReadLimit(-1)
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	last := joinRulerWorld.last()
	watched := readUntil(t, dialDeflate(), last)
	require.Greater(t, len(watched), joinBacklog/2, "the first spectator got deltas one by one")

	joiner := dialDeflate()
	conns := ln.Conns()
	conn := conns[len(conns)-1]
	got := readUntil(t, joiner, last)
	require.Equal(t, watched, got, "the same frames, the same bytes")
	require.Len(t, conn.Written(), 2, "the handshake, then the backlog of %d frames in one write", len(got))
}

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
