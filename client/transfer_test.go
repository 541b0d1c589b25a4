package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// fakeMover is a play server scripted per connection: it records each
// first message and then runs the connection's script.
type fakeMover struct {
	mu     sync.Mutex
	firsts []map[string]any
	script []func(ctx context.Context, c *websocket.Conn)
}

func (f *fakeMover) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{PlaySubprotocol, MsgpackSubprotocol}})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	m, err := recv(ctx, c)
	if err != nil {
		return
	}
	f.mu.Lock()
	i := len(f.firsts)
	f.firsts = append(f.firsts, m)
	f.mu.Unlock()
	if i < len(f.script) {
		f.script[i](ctx, c)
	}
	for { // keep the connection until the client goes
		m, err := recv(ctx, c)
		if err != nil {
			return
		}
		if m["type"] == "bye" {
			_ = c.Close(websocket.StatusNormalClosure, "bye")
			return
		}
	}
}

// fakeCodec is the codec of the subprotocol c negotiated.
func fakeCodec(c *websocket.Conn) playCodec {
	return playCodec{msgpack: c.Subprotocol() == MsgpackSubprotocol}
}

func send(ctx context.Context, c *websocket.Conn, v any) {
	k := fakeCodec(c)
	b, _ := k.marshal(v)
	_ = c.Write(ctx, k.messageType(), b)
}

// recv reads one message as a map (numbers as the codec decodes them).
func recv(ctx context.Context, c *websocket.Conn) (map[string]any, error) {
	typ, b, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, fakeCodec(c).unmarshal(typ, b, &m)
}

func TestPlayFollowsATransferWithItsTicketOnlyToItsTarget(t *testing.T) {
	forEachEncoding(t, testPlayFollowsATransferWithItsTicketOnlyToItsTarget)
}

func testPlayFollowsATransferWithItsTicketOnlyToItsTarget(t *testing.T, enc string) {
	f := &fakeMover{}
	ts := httptest.NewServer(f)
	defer ts.Close()
	host := strings.TrimPrefix(ts.URL, "http://")
	welcome := map[string]any{"type": "welcome", "session": "s1", "resume_token": "rt", "seq": 0, "nodes": []string{ts.URL + "/", ""}}
	f.script = []func(context.Context, *websocket.Conn){
		func(ctx context.Context, c *websocket.Conn) { // hello: welcome, then move (no scheme in "to")
			send(ctx, c, welcome)
			send(ctx, c, map[string]any{"type": "transfer", "to": host, "node": "n2", "ticket": "tk"})
		},
		func(ctx context.Context, c *websocket.Conn) { // resume with the ticket: refuse it
			_ = c.Close(4401, "ticket_invalid: gsd/api: transfer ticket refused: expired")
		},
		func(ctx context.Context, c *websocket.Conn) { // resume without: welcome, then a bare move
			send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "seq": 0})
			send(ctx, c, map[string]any{"type": "transfer"})
			_ = c.Close(CloseMoved, "moved: gone")
		},
		func(ctx context.Context, c *websocket.Conn) { // resume: stay
			send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "seq": 0})
		},
	}
	cl := New([]string{ts.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	ctx := playCtx(t)
	p, err := cl.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	require.Eventually(t, func() bool {
		_, resumes := p.Session()
		return resumes == 2
	}, 10*time.Second, time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.firsts, 4)
	require.Equal(t, "hello", f.firsts[0]["type"])
	require.Equal(t, "tk", f.firsts[1]["ticket"], "the ticket goes to the transfer's target")
	for _, m := range f.firsts[1:] {
		require.Equal(t, "resume", m["type"])
		require.Equal(t, "s1", m["session"])
		require.Equal(t, "rt", m["resume_token"])
	}
	require.Nil(t, f.firsts[2]["ticket"], "a refused ticket is dropped")
	require.Nil(t, f.firsts[3]["ticket"])
	require.Equal(t, []string{ts.URL}, p.addrs(), "a welcome's nodes are learnt once, the client's own addresses not again")
}

func TestPlayResumesOnAnotherAddressWhenTheServerGoesAway(t *testing.T) {
	forEachEncoding(t, testPlayResumesOnAnotherAddressWhenTheServerGoesAway)
}

func testPlayResumesOnAnotherAddressWhenTheServerGoesAway(t *testing.T, enc string) {
	a, b := &fakeMover{}, &fakeMover{}
	a.script = []func(context.Context, *websocket.Conn){
		func(ctx context.Context, c *websocket.Conn) {
			send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "resume_token": "rt", "seq": 0})
			_ = c.Close(websocket.StatusGoingAway, "unavailable: shutting down")
		},
	}
	b.script = []func(context.Context, *websocket.Conn){
		func(ctx context.Context, c *websocket.Conn) {
			send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "seq": 0})
		},
	}
	ta, tb := httptest.NewServer(a), httptest.NewServer(b)
	defer ta.Close()
	defer tb.Close()
	p, err := New([]string{ta.URL, tb.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond)).Play(playCtx(t), "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	require.Eventually(t, func() bool {
		_, resumes := p.Session()
		return resumes == 1
	}, 10*time.Second, time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Len(t, b.firsts, 1)
	require.Equal(t, "resume", b.firsts[0]["type"])
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Len(t, a.firsts, 1, "not back to the node that went away")
}
