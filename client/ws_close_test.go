package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// byeServer is a play server that welcomes each connection (after its
// gate, if it has one), records the first message and whether bye came on
// each connection, and answers bye by its connection's rule: drop it (the
// bye is lost) or close normally (the session is forgotten).
type byeServer struct {
	mu     sync.Mutex
	firsts []map[string]any
	byes   []bool
	// dropFirst: connection 0 ends right after the welcome.
	dropFirst bool
	// loseBye: connection 0 drops on bye instead of closing.
	loseBye bool
	// gate, when set, holds connection 1's welcome until it is closed.
	gate chan struct{}
	// resumed is closed when connection 1's first message arrived.
	resumed chan struct{}
}

func (f *byeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	f.byes = append(f.byes, false)
	f.mu.Unlock()
	if i == 1 {
		close(f.resumed)
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-ctx.Done():
				return
			}
		}
	}
	send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "resume_token": "rt", "seq": 0})
	if i == 0 && f.dropFirst {
		return // CloseNow: no close frame, the client resumes
	}
	for {
		m, err := recv(ctx, c)
		if err != nil {
			return
		}
		if m["type"] != "bye" {
			continue
		}
		f.mu.Lock()
		f.byes[i] = true
		f.mu.Unlock()
		if i == 0 && f.loseBye {
			return
		}
		_ = c.Close(websocket.StatusNormalClosure, "bye")
		return
	}
}

func (f *byeServer) seen() (firsts []map[string]any, byes []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.firsts...), append([]bool(nil), f.byes...)
}

func TestPlayCloseDuringAResumeSaysByeOnTheResumedConnection(t *testing.T) {
	forEachEncoding(t, testPlayCloseDuringAResumeSaysByeOnTheResumedConnection)
}

func testPlayCloseDuringAResumeSaysByeOnTheResumedConnection(t *testing.T, enc string) {
	f := &byeServer{dropFirst: true, gate: make(chan struct{}), resumed: make(chan struct{})}
	ts := httptest.NewServer(f)
	defer ts.Close()
	cl := New([]string{ts.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	defer cl.Close()
	p, err := cl.Play(playCtx(t), "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)

	// The first connection dropped; the resume waits for its welcome, so
	// the Play has no connection when Close comes.
	select {
	case <-f.resumed:
	case <-time.After(10 * time.Second):
		t.Fatal("no resume")
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	require.Eventually(t, p.isClosing, 10*time.Second, time.Millisecond)
	close(f.gate)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	firsts, byes := f.seen()
	require.Len(t, firsts, 2)
	require.Equal(t, "resume", firsts[1]["type"])
	require.Equal(t, []bool{false, true}, byes, "bye goes on the resumed connection")
	_, err = p.Next(context.Background())
	require.ErrorIs(t, err, ErrPlayClosed)
}

func TestPlayCloseSaysByeAgainWhenItsConnectionDropsFirst(t *testing.T) {
	forEachEncoding(t, testPlayCloseSaysByeAgainWhenItsConnectionDropsFirst)
}

func testPlayCloseSaysByeAgainWhenItsConnectionDropsFirst(t *testing.T, enc string) {
	f := &byeServer{loseBye: true, resumed: make(chan struct{})}
	ts := httptest.NewServer(f)
	defer ts.Close()
	cl := New([]string{ts.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	defer cl.Close()
	p, err := cl.Play(playCtx(t), "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "a second Close is a no-op")
	firsts, byes := f.seen()
	require.Len(t, firsts, 2)
	require.Equal(t, "resume", firsts[1]["type"])
	require.Equal(t, []bool{true, true}, byes, "the lost bye is said again after the resume")
}
