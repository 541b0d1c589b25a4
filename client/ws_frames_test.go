package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A scripted server: legacy events frames, frames with coverage, a delta
// with a delete, a progress frame, then a frame after a gap, which makes
// the client resume from what it covered.
func TestPlayHandlesCoverageDeltasProgressAndGaps(t *testing.T) {
	resumed := make(chan map[string]any, 1)
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{PlaySubprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var hello map[string]any
		_ = json.Unmarshal(b, &hello)
		n := conns.Add(1)
		send := func(s string) { _ = c.Write(ctx, websocket.MessageText, []byte(s)) }
		if n == 1 {
			send(`{"type":"welcome","session":"s1","resume_token":"rt","world":"w","player":"ann","seq":0,"epoch":0}`)
			send(`{"type":"events","events":[{"seq":1,"priority":"critical"},{"seq":2}]}`)
			send(`{"type":"events","from":3,"seq":4,"events":[{"seq":4}]}`)
			send(`{"type":"delta","from":5,"seq":6,"tick":1,"entities":{"e":{"deleted":2,"fields":{"x":{"value":1,"version":6}}}}}`)
			send(`{"type":"delta","from":7,"seq":7,"tick":20,"entities":{}}`)
			send(`{"type":"events","from":9,"seq":9,"events":[{"seq":9}]}`) // 8 is missing
		} else {
			resumed <- hello
			send(`{"type":"welcome","session":"s1","world":"w","player":"ann","seq":7,"epoch":1}`)
			send(`{"type":"events","from":8,"seq":9,"events":[{"seq":4},{"seq":9}]}`)
			send(`{"type":"events","from":10,"seq":12,"events":[]}`)
		}
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := New([]string{srv.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := c.Play(ctx, "w", PlayOptions{Player: "ann", AckInterval: time.Hour})
	require.NoError(t, err)
	defer p.Close()
	var seqs []uint64
	for len(seqs) < 5 {
		ev, err := p.Next(ctx)
		require.NoError(t, err)
		seqs = append(seqs, ev.Seq)
		if ev.Status == DeltaStatus {
			x := fsm.Int(1)
			require.Equal(t, []fsm.JSONChange{{Entity: "e", Op: "delete", Version: 2}, {Entity: "e", Field: "x", Op: "set", Value: &x, Version: 6}}, ev.Changes)
			require.Equal(t, map[string]map[string]uint64{"e": {"x": 6}}, ev.Versions)
		}
	}
	require.Equal(t, []uint64{1, 2, 4, 6, 9}, seqs, "the repeated 4 is dropped")
	h := <-resumed
	require.Equal(t, "resume", h["type"])
	require.Equal(t, float64(7), h["last_seq"], "it resumes from what the frames covered")
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.received == 12 && p.delivered == 9
	}, 10*time.Second, time.Millisecond, "an empty frame moves the covered seq")
	// Next takes the empty frame's coverage.
	nctx, ncancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer ncancel()
	_, err = p.Next(nctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	p.mu.Lock()
	require.Equal(t, uint64(12), p.delivered)
	p.mu.Unlock()
}
