package client

import (
	"bytes"
	"context"
	"fmt"
	"github.com/gsd-dev/gsd/internal/golden"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// The play messages the Go client sends, in both encodings, as a scripted
// server receives them: hello, pong (to the server's ping), an action with
// every op kind, the resume after a transfer (with its ticket), the ack
// and bye of Close. The script makes their order fixed: the server moves
// the connection only after the test saw the action's result.

// goldenPlayServer records every message the client sends, raw, in order.
type goldenPlayServer struct {
	mu    sync.Mutex
	msgs  [][]byte
	conns int
	url   string
	pong  chan struct{} // the client answered the ping
	move  chan struct{} // the test asks the server to move the connection
}

func (s *goldenPlayServer) recv(ctx context.Context, c *websocket.Conn) (map[string]any, error) {
	typ, b, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, b)
	s.mu.Unlock()
	var m map[string]any
	return m, fakeCodec(c).unmarshal(typ, b, &m)
}

func (s *goldenPlayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{PlaySubprotocol, MsgpackSubprotocol}})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	s.mu.Lock()
	n := s.conns
	s.conns++
	s.mu.Unlock()
	if _, err := s.recv(ctx, c); err != nil {
		return
	}
	if n == 0 {
		send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "resume_token": "rt", "world": "arena", "player": "ann", "seq": 0, "epoch": 0})
		send(ctx, c, map[string]any{"type": "events", "from": 1, "seq": 1, "events": []any{
			map[string]any{"world": "arena", "seq": 1, "index": 9, "time": 1, "player": "bob", "client_seq": 1, "priority": "critical", "status": "applied"}}})
		send(ctx, c, map[string]any{"type": "ping", "t": 1_700_000_000_000_000_000})
		go func() {
			select {
			case <-s.move:
				send(ctx, c, map[string]any{"type": "transfer", "to": s.url, "node": "n2", "ticket": "tk"})
			case <-ctx.Done():
			}
		}()
	} else {
		send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "world": "arena", "player": "ann", "seq": 1, "epoch": 1})
	}
	for {
		m, err := s.recv(ctx, c)
		if err != nil {
			return
		}
		switch m["type"] {
		case "pong":
			close(s.pong)
		case "action":
			a := m["action"].(map[string]any)
			send(ctx, c, map[string]any{"type": "result", "seq": a["seq"], "event": map[string]any{
				"world": "arena", "seq": 2, "index": 10, "time": 2, "player": "ann", "client_seq": a["seq"], "priority": "bulk", "status": "applied"}})
		case "bye":
			_ = c.Close(websocket.StatusNormalClosure, "bye")
			return
		}
	}
}

// goldenClientPlay runs the script with encoding enc and returns the
// client's messages.
func goldenClientPlay(t *testing.T, enc string) [][]byte {
	t.Helper()
	s := &goldenPlayServer{pong: make(chan struct{}), move: make(chan struct{})}
	ts := httptest.NewServer(s)
	defer ts.Close()
	s.url = ts.URL
	cl := New([]string{ts.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	defer cl.Close()
	ctx := playCtx(t)
	p, err := cl.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann", AckInterval: time.Hour})
	require.NoError(t, err)
	ev, err := p.Next(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, ev.Seq)
	select {
	case <-s.pong:
	case <-ctx.Done():
		t.Fatal("no pong")
	}
	_, err = p.Act(ctx, goldenAction(300))
	require.NoError(t, err)
	close(s.move)
	require.Eventually(t, func() bool {
		_, resumes := p.Session()
		return resumes == 1
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, p.Close())
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs
}

func TestGoldenClientPlayMessages(t *testing.T) {
	forEachEncoding(t, func(t *testing.T, enc string) {
		msgs := goldenClientPlay(t, enc)
		require.Len(t, msgs, 6, "hello, pong, action, resume, ack, bye")
		if enc == EncodingJSON {
			golden.Text(t, "play_messages_json.jsonl", append(bytes.Join(msgs, []byte("\n")), '\n'))
			return
		}
		for i, m := range msgs {
			golden.Binary(t, fmt.Sprintf("play_messages_msgpack_%d.bin", i), m)
		}
	})
}
