package client

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// byes records, per connection of a fakeMover, whether the client said bye
// on it.
type byes struct {
	mu  sync.Mutex
	got [2]bool
}

func (b *byes) seen() []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	got := b.got
	return got[:]
}

// welcomeThenBye is connection i's script: welcome, then wait for bye,
// record it and answer it by the rule: drop the connection (lose: the bye
// is lost) or close normally (the session is forgotten).
func (b *byes) welcomeThenBye(i int, lose bool) func(ctx context.Context, c *websocket.Conn) {
	return func(ctx context.Context, c *websocket.Conn) {
		sendWelcome(ctx, c)
		for {
			m, err := recv(ctx, c)
			if err != nil {
				return
			}
			if m["type"] != "bye" {
				continue
			}
			b.mu.Lock()
			b.got[i] = true
			b.mu.Unlock()
			if lose {
				_ = c.CloseNow()
			} else {
				_ = c.Close(websocket.StatusNormalClosure, "bye")
			}
			return
		}
	}
}

func sendWelcome(ctx context.Context, c *websocket.Conn) {
	send(ctx, c, map[string]any{"type": "welcome", "session": "s1", "resume_token": "rt", "seq": 0})
}

func (f *fakeMover) seenFirsts() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.firsts...)
}

func TestPlayCloseDuringAResumeSaysByeOnTheResumedConnection(t *testing.T) {
	forEachEncoding(t, testPlayCloseDuringAResumeSaysByeOnTheResumedConnection)
}

func testPlayCloseDuringAResumeSaysByeOnTheResumedConnection(t *testing.T, enc string) {
	var b byes
	gate, resumed := make(chan struct{}), make(chan struct{})
	f := &fakeMover{script: []func(ctx context.Context, c *websocket.Conn){
		func(ctx context.Context, c *websocket.Conn) {
			sendWelcome(ctx, c)
			_ = c.CloseNow() // no close frame: the client resumes
		},
		func(ctx context.Context, c *websocket.Conn) {
			close(resumed)
			select { // hold the welcome until the test has called Close
			case <-gate:
			case <-ctx.Done():
				return
			}
			b.welcomeThenBye(1, false)(ctx, c)
		},
	}}
	ts := httptest.NewServer(f)
	defer ts.Close()
	cl := New([]string{ts.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	defer cl.Close()
	p, err := cl.Play(playCtx(t), "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)

	// The first connection dropped; the resume waits for its welcome, so
	// the Play has no connection when Close comes.
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatal("no resume")
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	require.Eventually(t, p.isClosing, 10*time.Second, time.Millisecond)
	close(gate)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	firsts := f.seenFirsts()
	require.Len(t, firsts, 2)
	require.Equal(t, "resume", firsts[1]["type"])
	require.Equal(t, []bool{false, true}, b.seen(), "bye goes on the resumed connection")
	_, err = p.Next(context.Background())
	require.ErrorIs(t, err, ErrPlayClosed)
}

func TestPlayCloseSaysByeAgainWhenItsConnectionDropsFirst(t *testing.T) {
	forEachEncoding(t, testPlayCloseSaysByeAgainWhenItsConnectionDropsFirst)
}

func testPlayCloseSaysByeAgainWhenItsConnectionDropsFirst(t *testing.T, enc string) {
	var b byes
	f := &fakeMover{script: []func(ctx context.Context, c *websocket.Conn){
		b.welcomeThenBye(0, true), b.welcomeThenBye(1, false),
	}}
	ts := httptest.NewServer(f)
	defer ts.Close()
	cl := New([]string{ts.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	defer cl.Close()
	p, err := cl.Play(playCtx(t), "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "a second Close is a no-op")
	firsts := f.seenFirsts()
	require.Len(t, firsts, 2)
	require.Equal(t, "resume", firsts[1]["type"])
	require.Equal(t, []bool{true, true}, b.seen(), "the lost bye is said again after the resume")
}
