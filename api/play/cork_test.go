package play

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// countConn is a net.Conn that records its writes.
type countConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	err    error // returned by every write when set
	// deadlines counts SetWriteDeadline calls.
	deadlines int
}

func (c *countConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.writes = append(c.writes, bytes.Clone(p))
	if c.Conn == nil {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *countConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines++
	c.mu.Unlock()
	if c.Conn == nil {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *countConn) written() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

func TestCorkConnWritesABatchInOneWrite(t *testing.T) {
	under := &countConn{}
	c := &corkConn{Conn: under}

	_, err := c.Write([]byte("direct"))
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("direct")}, under.written(), "an uncorked write goes straight to the socket")

	c.cork()
	for _, s := range []string{"a", "bb", "ccc"} {
		n, err := c.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	require.Len(t, under.written(), 1, "corked writes wait for uncork")
	require.NoError(t, c.uncork())
	require.Equal(t, [][]byte{[]byte("direct"), []byte("abbccc")}, under.written())

	require.NoError(t, c.uncork(), "uncorking with nothing collected writes nothing")
	require.Len(t, under.written(), 2)
}

func TestCorkConnFlushesAtTheLimit(t *testing.T) {
	under := &countConn{}
	c := &corkConn{Conn: under}
	c.cork()
	big := bytes.Repeat([]byte("x"), corkLimit-1)
	_, err := c.Write(big)
	require.NoError(t, err)
	require.Empty(t, under.written())
	_, err = c.Write([]byte("yz")) // past the limit: the batch so far goes out
	require.NoError(t, err)
	require.Len(t, under.written(), 1)
	require.Len(t, under.written()[0], corkLimit+1)
	_, err = c.Write([]byte("after"))
	require.NoError(t, err)
	require.NoError(t, c.uncork())
	require.Equal(t, []byte("after"), under.written()[1])

	// A rare huge batch's buffer is not kept.
	c.cork()
	_, err = c.Write(bytes.Repeat([]byte("x"), 3*corkLimit))
	require.NoError(t, err)
	require.Nil(t, c.buf)
	require.NoError(t, c.uncork())
}

func TestCorkConnFailedWriteSticks(t *testing.T) {
	boom := errors.New("boom")
	under := &countConn{err: boom}
	c := &corkConn{Conn: under}
	c.cork()
	_, err := c.Write([]byte("a"))
	require.NoError(t, err, "a corked write only collects")
	require.ErrorIs(t, c.uncork(), boom)
	_, err = c.Write([]byte("b"))
	require.ErrorIs(t, err, boom, "a connection whose write failed fails every later write")
	c.cork()
	_, err = c.Write([]byte("c"))
	require.ErrorIs(t, err, boom)
}

func TestCorkConnWriteTimesOut(t *testing.T) {
	a, b := net.Pipe() // nobody reads b: a write blocks until its deadline
	defer a.Close()
	defer b.Close()
	c := &corkConn{Conn: a, timeout: time.Millisecond}
	c.cork()
	_, err := c.Write([]byte("stuck"))
	require.NoError(t, err)
	require.ErrorIs(t, c.uncork(), os.ErrDeadlineExceeded)

	// A deadline that cannot be set fails the write the same way.
	require.NoError(t, a.Close())
	c2 := &corkConn{Conn: a, timeout: time.Millisecond}
	_, err = c2.Write([]byte("closed"))
	require.Error(t, err)
}

// countListener records every accepted connection's writes.
type countListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*countConn
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

// TestCorkHijackSendsMessagesInOneWrite upgrades through corkHijack, as
// the play endpoint does, and writes three messages in one cork: the
// client reads three messages, and the socket saw one write for them.
func TestCorkHijackSendsMessagesInOneWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countListener{Listener: ln}
	done := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &corkHijack{ResponseWriter: w, timeout: time.Second}
		ws, err := websocket.Accept(h, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer ws.CloseNow()
		h.cc.cork()
		for _, m := range []string{"one", "two", "three"} {
			if err := ws.Write(context.Background(), websocket.MessageText, []byte(m)); err != nil {
				done <- err
				return
			}
		}
		done <- h.cc.uncork()
		_, _, _ = ws.Read(context.Background()) // until the client closes
	}))
	srv.Listener = cl
	srv.Start()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	defer conn.CloseNow()
	for _, want := range []string{"one", "two", "three"} {
		_, got, err := conn.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, want, string(got))
	}
	require.NoError(t, <-done)
	cl.mu.Lock()
	require.Len(t, cl.conns, 1)
	writes := cl.conns[0].written()
	cl.mu.Unlock()
	require.Len(t, writes, 2, "the handshake's response, then one write for the three messages")
	require.True(t, bytes.HasPrefix(writes[0], []byte("HTTP/1.1 101")))
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
}

func TestCorkHijackWithoutAHijacker(t *testing.T) {
	rec := httptest.NewRecorder()
	h := &corkHijack{ResponseWriter: rec}
	_, _, err := h.Hijack()
	require.Error(t, err)
	require.Nil(t, h.cc)
	require.Same(t, rec, h.Unwrap().(*httptest.ResponseRecorder), "http.ResponseController reaches the server's writer")
}

func TestCorkConnFailsAWriteWhoseLimitFlushFails(t *testing.T) {
	boom := errors.New("boom")
	c := &corkConn{Conn: &countConn{err: boom}}
	c.cork()
	_, err := c.Write(bytes.Repeat([]byte("x"), corkLimit))
	require.ErrorIs(t, err, boom)
}

// corkedConn is a play connection's writing half over a real upgrade
// through corkHijack: the server's socket records its writes (and can be
// made to fail them), the client reads.
type corkedConn struct {
	c      *playConn
	under  *countConn
	client *websocket.Conn
}

func newCorkedConn(t *testing.T) *corkedConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countListener{Listener: ln}
	served := make(chan *playConn, 1)
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &corkHijack{ResponseWriter: w, timeout: time.Second}
		ws, err := websocket.Accept(h, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		pm, err := newPlayMetrics(prometheus.NewRegistry())
		if err != nil {
			return
		}
		c := &playConn{s: bareServer(pm), ws: ws, cork: h.cc, codec: codecJSON, out: make(chan []byte, 4), ob: newOutbox(4, codecJSON)}
		c.ctx, c.cancel = context.WithCancel(context.Background())
		served <- c
		<-release
	}))
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { client.CloseNow() })
	c := <-served
	t.Cleanup(c.cancel)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return &corkedConn{c: c, under: cl.conns[0], client: client}
}

// A batch goes out in one write: the control messages first, then the
// outbox's frames, and the write stage is timed.
func TestWriteBatchSendsControlThenFramesInOneWrite(t *testing.T) {
	cc := newCorkedConn(t)
	c := cc.c
	c.ob.start(10)
	c.ob.offer(hubEvents(t, critEv(11, "e1")), nil)
	<-c.ob.signal
	c.out <- []byte(`{"type":"result"}`)
	c.out <- []byte(`{"type":"pong"}`)
	before := len(cc.under.written())
	require.True(t, c.writeBatch())
	require.Len(t, cc.under.written(), before+1, "one write for the batch")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, want := range []string{"result", "pong", "events"} {
		_, b, err := cc.client.Read(ctx)
		require.NoError(t, err)
		require.Contains(t, string(b), `"type":"`+want+`"`)
	}
	require.Equal(t, uint64(11), c.sent.Load())
	var m dto.Metric
	require.NoError(t, c.s.playMetrics.stageWrite.(prometheus.Histogram).Write(&m))
	require.Equal(t, uint64(1), m.GetHistogram().GetSampleCount(), "the events frame's write stage")
}

// A socket that fails the batch's write cuts the connection off as a slow
// consumer; so does a closed socket, and a connection that is ending
// refuses the message.
func TestWriteBatchFailuresEndTheConnection(t *testing.T) {
	boom := errors.New("boom")
	for name, setup := range map[string]func(cc *corkedConn){
		"the socket write": func(cc *corkedConn) {
			cc.under.mu.Lock()
			cc.under.err = boom
			cc.under.mu.Unlock()
			cc.c.out <- []byte(`{"type":"pong"}`)
		},
		"a closed conn": func(cc *corkedConn) {
			cc.c.out <- []byte(`{"type":"pong"}`)
			cc.c.ws.CloseNow()
		},
		"an ending connection": func(cc *corkedConn) {
			cc.c.cancel() // its close frame may follow: no message after it
			cc.c.out <- []byte(`{"type":"pong"}`)
		},
		"a frame": func(cc *corkedConn) {
			cc.c.ob.start(10)
			cc.c.ob.offer(hubEvents(t, critEv(11, "e1")), nil)
			cc.c.ws.CloseNow()
		},
	} {
		t.Run(name, func(t *testing.T) {
			cc := newCorkedConn(t)
			setup(cc)
			require.False(t, cc.c.writeBatch())
			require.Error(t, cc.c.ctx.Err(), "the connection ends")
			require.ErrorIs(t, cc.c.err, edge.ErrSlowConsumer)
		})
	}
}

// writeMessage writes the very bytes the library writes for a message,
// in one frame of each header size, text and binary, and a client of
// the library reads them back.
func TestCorkWriteMessageWritesTheLibrarysFrame(t *testing.T) {
	cc := newCorkedConn(t)
	cc.client.SetReadLimit(1 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []int{0, 1, 125, 126, 1000, 65535, 65536, 70000} {
		for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
			p := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
			before := len(cc.under.written())
			require.NoError(t, cc.c.ws.Write(ctx, typ, p))
			require.NoError(t, cc.c.cork.writeMessage(cc.c.ctx, typ, p))
			w := cc.under.written()[before:]
			lib := bytes.Join(w[:len(w)-1], nil) // the library may write a big frame in pieces
			require.Equal(t, lib, w[len(w)-1], "%d bytes of type %v: one write, the library's bytes", n, typ)
			for range 2 {
				gotTyp, got, err := cc.client.Read(ctx)
				require.NoError(t, err)
				require.Equal(t, typ, gotTyp)
				require.Equal(t, p, got)
			}
		}
	}
}

// A corked message waits for uncork; a connection that is ending takes
// no more messages (its close frame may follow), nor one whose socket
// failed.
func TestCorkWriteMessageCorksAndRefuses(t *testing.T) {
	under := &countConn{}
	c := &corkConn{Conn: under}
	ctx, cancel := context.WithCancel(context.Background())
	c.cork()
	require.NoError(t, c.writeMessage(ctx, websocket.MessageText, []byte("hi")))
	require.Empty(t, under.written())
	require.NoError(t, c.uncork())
	require.Equal(t, [][]byte{{0x81, 2, 'h', 'i'}}, under.written())

	cancel()
	require.ErrorIs(t, c.writeMessage(ctx, websocket.MessageText, []byte("late")), net.ErrClosed)
	require.Len(t, under.written(), 1)

	boom := errors.New("boom")
	failed := &corkConn{Conn: &countConn{err: boom}}
	require.ErrorIs(t, failed.writeMessage(context.Background(), websocket.MessageBinary, []byte{1}), boom)
	require.ErrorIs(t, failed.writeMessage(context.Background(), websocket.MessageBinary, []byte{1}), boom, "it sticks")
}

// The write deadline is set again only once the last one set is
// timeout/deadlineSlack old: writes close together share it.
func TestCorkConnSetsTheWriteDeadlineOncePerSlack(t *testing.T) {
	under := &countConn{}
	c := &corkConn{Conn: under, timeout: time.Hour}
	deadlines := func() int {
		under.mu.Lock()
		defer under.mu.Unlock()
		return under.deadlines
	}
	for range 3 {
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
	}
	require.Equal(t, 1, deadlines(), "three writes within an hour/16 share one deadline")
	c.mu.Lock()
	c.setAt = c.setAt.Add(-time.Hour / deadlineSlack)
	c.mu.Unlock()
	_, err := c.Write([]byte("x"))
	require.NoError(t, err)
	require.Equal(t, 2, deadlines(), "a write once the deadline is hour/16 old sets it again")
	require.Len(t, under.written(), 4)
}
