package relay

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// recConn records what is written to it; a set fail makes writes fail.
type recConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	fail   error
}

func (c *recConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recConn) SetWriteDeadline(time.Time) error { return nil }

func (c *recConn) written() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

func TestCorkConnWritesACorkedBatchInOneWriteAndOthersAtOnce(t *testing.T) {
	rc := &recConn{}
	c := &corkConn{Conn: rc, timeout: time.Second}
	_, err := c.Write([]byte("a"))
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("a")}, rc.written(), "uncorked: straight to the socket")

	c.cork()
	for _, s := range []string{"b", "cd", "e"} {
		n, err := c.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	require.Len(t, rc.written(), 1, "corked: nothing written yet")
	require.NoError(t, c.uncork())
	require.Equal(t, [][]byte{[]byte("a"), []byte("bcde")}, rc.written())
	require.NoError(t, c.uncork(), "an empty cork writes nothing")
	require.Len(t, rc.written(), 2)
}

func TestCorkConnWritesOutAtItsLimit(t *testing.T) {
	rc := &recConn{}
	c := &corkConn{Conn: rc, timeout: time.Second}
	c.cork()
	big := bytes.Repeat([]byte("x"), corkLimit)
	_, err := c.Write(big)
	require.NoError(t, err)
	require.Len(t, rc.written(), 1, "a full cork goes out before taking more")
	_, err = c.Write([]byte("y"))
	require.NoError(t, err)
	require.NoError(t, c.uncork())
	require.Equal(t, [][]byte{big, []byte("y")}, rc.written())
}

func TestCorkConnKeepsAFailedWritesError(t *testing.T) {
	boom := errors.New("boom")
	rc := &recConn{fail: boom}
	c := &corkConn{Conn: rc, timeout: time.Second}
	c.cork()
	_, err := c.Write([]byte("a"))
	require.NoError(t, err, "corked: only memory")
	require.ErrorIs(t, c.uncork(), boom)
	rc.fail = nil
	_, err = c.Write([]byte("b"))
	require.ErrorIs(t, err, boom, "after a failed write every write fails")
	c.cork()
	require.ErrorIs(t, c.uncork(), boom)
	require.Empty(t, rc.written())

	big := &corkConn{Conn: &recConn{fail: boom}, timeout: time.Second}
	big.cork()
	_, err = big.Write(bytes.Repeat([]byte("x"), corkLimit))
	require.ErrorIs(t, err, boom, "a full cork's write fails the write that filled it")
}

func TestCorkConnRefusesAWriteWhoseDeadlineCannotBeSet(t *testing.T) {
	a, b := net.Pipe()
	require.NoError(t, b.Close())
	require.NoError(t, a.Close())
	c := &corkConn{Conn: a, timeout: time.Second}
	_, err := c.Write([]byte("a"))
	require.Error(t, err)
}

// countListener counts the socket writes of the connections it accepts.
type countListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*countConn
}

type countConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (l *countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, cc)
	l.mu.Unlock()
	return cc, nil
}

func (l *countListener) last() *countConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[len(l.conns)-1]
}

func (c *countConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

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

// A spectator joining a view with a backlog (the join keyframe and the
// deltas since) gets it in one socket write after the handshake's, byte
// for byte what a spectator who watched from the start got.
func TestRelayWatchSendsAJoinersBacklogInOneWrite(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/views") {
			http.NotFound(w, r)
			return
		}
		joinUpstream(w, r)
	}))
	t.Cleanup(func() {
		up.CloseClientConnections()
		up.Close()
	})
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.Pipeline.Tick = 10 * time.Millisecond
	cfg.Pipeline.KeyframeInterval = time.Hour
	r, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(r.Handler())
	ln := &countListener{Listener: ts.Listener}
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		r.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/worlds/arena/watch?versions=false"
	dialDeflate := func() *websocket.Conn {
		c, _, err := websocket.Dial(context.Background(), wsURL, &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolWatchDeflate}})
		require.NoError(t, err)
		c.SetReadLimit(-1)
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	last := uint64(joinEntities/100 + joinBacklog)
	watched := readUntil(t, dialDeflate(), last)
	require.Greater(t, len(watched), joinBacklog/2, "the first spectator got deltas one by one")

	joiner := dialDeflate()
	conn := ln.last()
	got := readUntil(t, joiner, last)
	require.Equal(t, watched, got, "the same frames, the same bytes")
	require.Equal(t, 2, conn.count(), "the handshake, then the backlog of %d frames in one write", len(got))
}
