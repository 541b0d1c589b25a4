package relay

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// gatedListener holds back the writes of the connections it accepts
// while gated is set, after their first (the handshake's answer), until
// Open; Waiting receives when one such write waits.
type gatedListener struct {
	net.Listener
	gated   atomic.Bool
	open    chan struct{}
	once    sync.Once
	waiting chan struct{}
}

func newGatedListener(ln net.Listener) *gatedListener {
	return &gatedListener{Listener: ln, open: make(chan struct{}), waiting: make(chan struct{}, 1)}
}

// Open lets the held writes through, and every later one.
func (l *gatedListener) Open() { l.once.Do(func() { close(l.open) }) }

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || !l.gated.Load() {
		return c, err
	}
	return &gatedConn{Conn: c, l: l}, nil
}

// gatedConn is a connection of a gatedListener accepted while gated. Its
// writes come one at a time (wscork.Conn's lock).
type gatedConn struct {
	net.Conn
	l      *gatedListener
	writes int
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if c.writes++; c.writes > 1 {
		select {
		case c.l.waiting <- struct{}{}:
		default:
		}
		<-c.l.open
	}
	return c.Conn.Write(p)
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
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/views") {
			http.NotFound(w, r)
			return
		}
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
	}))
	t.Cleanup(func() {
		up.CloseClientConnections()
		up.Close()
	})
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.Pipeline.Tick = 10 * time.Millisecond
	cfg.Pipeline.KeyframeInterval = time.Hour
	cfg.Pipeline.Queue = queue
	r, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(r.Handler())
	gate := newGatedListener(ts.Listener)
	ts.Listener = gate
	ts.Start()
	t.Cleanup(func() {
		gate.Open()
		r.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/worlds/arena/watch"
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
	gate.gated.Store(true)
	slow := dialJSON()
	select {
	case <-gate.waiting:
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
