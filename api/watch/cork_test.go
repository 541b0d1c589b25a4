package watch

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// frames reads c's next n frames, as sent, and returns them with the
// last one's seq.
func frames(t *testing.T, c *websocket.Conn, n int) ([][]byte, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := make([][]byte, n)
	var last struct{ Seq uint64 }
	for i := range out {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &last), "%s", b)
		out[i] = b
	}
	return out, last.Seq
}

// A spectator joining a view with a backlog (the join keyframe and the
// deltas since) gets it in one socket write after the handshake's, byte
// for byte what a spectator who watched from the start got, as from a
// relay.
func TestWatchSendsAJoinersBacklogInOneWrite(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	first := e.dial(t, "")
	watched, _ := frames(t, first, 1) // the join keyframe
	for i := range 4 {
		seq := e.hit(t, int64(i+1))
		delta, got := frames(t, first, 1) // the pipeline ticked before the next hit
		require.Equal(t, seq, got)
		watched = append(watched, delta...)
	}

	joiner := e.dial(t, "")
	conns := e.ln.Conns()
	conn := conns[len(conns)-1]
	got, _ := frames(t, joiner, len(watched))
	require.Equal(t, watched, got, "the same frames, the same bytes")
	require.Len(t, conn.Written(), 2, "the handshake, then the keyframe and its 4 deltas in one write")
}

// A watcher whose link takes nothing is cut off by the stream write
// timeout (each frame's, and each socket write's through the cork), and
// counted out; the node goes on serving the others.
func TestWatchCutsOffAViewerWhoseLinkTakesNothing(t *testing.T) {
	t.Parallel()
	e := newWatchEnvWith(t, func(c *edge.Config) { c.StreamWriteTimeout = 200 * time.Millisecond })
	gate := wscork.NewGate()
	t.Cleanup(gate.Open)
	e.ln.HoldAt(gate)
	stuck := e.dial(t, "")
	<-gate.Waiting() // its keyframe waits at the gate, past the deadline
	e.ln.HoldAt(nil)
	require.Eventually(t, func() bool { return testutil.ToFloat64(e.svc.viewers) == 0 }, 20*time.Second, 5*time.Millisecond,
		"the stuck watcher was cut off")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err := stuck.Read(ctx)
	require.Error(t, err, "its connection ended")

	other := e.dial(t, "")
	_, seq := frames(t, other, 1)
	require.Zero(t, seq)
	got := e.hit(t, 3)
	_, seq = frames(t, other, 1)
	require.Equal(t, got, seq)
}

// A rules change found before a frame of a batch closes the watch with
// 4409 after the frames before it, and ends the world's pipelines.
func TestWatchBatchStopsAtARulesChange(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	anchor := e.dial(t, "")
	frames(t, anchor, 1)
	for i := range 2 {
		e.hit(t, int64(i+1))
		frames(t, anchor, 1) // a delta each
	}
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wt, err := e.svc.hub.Join("arena", spectator.Viewer{})
		if err != nil {
			done <- err
			return
		}
		defer wt.Close()
		h := &wscork.Hijack{ResponseWriter: w, Timeout: time.Second}
		ws, err := websocket.Accept(h, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer ws.CloseNow()
		checks := 0
		rulesSame := func() bool { checks++; return checks < 2 } // changed before the second frame
		done <- e.svc.writeQueued(r.Context(), ws, h.Conn, "arena", <-wt.Frames(), wt, spectator.CodecJSON, rulesSame)
	}))
	t.Cleanup(srv.Close)
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	kf, _ := frames(t, c, 1)
	require.Contains(t, string(kf[0]), `"keyframe"`, "the frame before the change went")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err = c.Read(ctx)
	require.Equal(t, CloseRulesChanged, websocket.CloseStatus(err), "%v", err)
	require.ErrorIs(t, <-done, errRulesChanged)
	require.Eventually(t, func() bool { return e.svc.hub.Pipelines() == 0 }, 20*time.Second, 5*time.Millisecond,
		"the world's pipelines ended")
}
