package relay

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
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
