package play

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// corkedConn is a play connection's writing half over a real upgrade
// through wscork.Hijack: the server's socket records its writes (and can be
// made to fail them), the client reads.
type corkedConn struct {
	c      *playConn
	under  *wscork.Recorder
	client *websocket.Conn
}

func newCorkedConn(t *testing.T) *corkedConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &wscork.RecordingListener{Listener: ln}
	served := make(chan *playConn, 1)
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &wscork.Hijack{ResponseWriter: w, Timeout: time.Second}
		ws, err := websocket.Accept(h, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		pm, err := newPlayMetrics(prometheus.NewRegistry())
		if err != nil {
			return
		}
		c := &playConn{s: bareServer(pm), ws: ws, cork: h.Conn, codec: codecJSON, out: make(chan []byte, 4), ob: newOutbox(4, codecJSON)}
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
	return &corkedConn{c: c, under: cl.Conns()[0], client: client}
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
	before := len(cc.under.Written())
	require.True(t, c.writeBatch())
	require.Len(t, cc.under.Written(), before+1, "one write for the batch")
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
			cc.under.Fail(boom)
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

// WriteMessage writes the very bytes the library writes for a message,
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
			before := len(cc.under.Written())
			require.NoError(t, cc.c.ws.Write(ctx, typ, p))
			mid := len(cc.under.Written())
			calls, _ := cc.c.cork.Written()
			require.NoError(t, cc.c.cork.WriteMessage(cc.c.ctx, typ, p))
			w := cc.under.Written()
			lib := bytes.Join(w[before:mid], nil) // the library may write a big frame in pieces
			// Past wscork.Limit, the header and the payload go in one
			// writev, which the recorder sees as two writes.
			mine := bytes.Join(w[mid:], nil)
			after, _ := cc.c.cork.Written()
			require.Equal(t, uint64(1), after-calls, "%d bytes of type %v: one write call", n, typ)
			require.True(t, bytes.Equal(lib, mine), "%d bytes of type %v: the library's bytes", n, typ)
			for range 2 {
				gotTyp, got, err := cc.client.Read(ctx)
				require.NoError(t, err)
				require.Equal(t, typ, gotTyp)
				require.Equal(t, p, got)
			}
		}
	}
}
