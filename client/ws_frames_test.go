package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// A scripted server: legacy events frames, frames with coverage, a delta
// with a delete, a progress frame, then a frame after a gap, which makes
// the client resume from what it covered.
func TestPlayHandlesCoverageDeltasProgressAndGaps(t *testing.T) {
	forEachEncoding(t, func(t *testing.T, enc string) { testPlayHandlesCoverageDeltasProgressAndGaps(t, enc, false) })
}

// With HeadersOnly the frames are ordered, checked and acknowledged the
// same; only the changes are left out.
func TestPlayWithHeadersOnlyHandlesCoverageDeltasProgressAndGaps(t *testing.T) {
	forEachEncoding(t, func(t *testing.T, enc string) { testPlayHandlesCoverageDeltasProgressAndGaps(t, enc, true) })
}

func testPlayHandlesCoverageDeltasProgressAndGaps(t *testing.T, enc string, headersOnly bool) {
	resumed := make(chan map[string]any, 1)
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{PlaySubprotocol, MsgpackSubprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		hello, err := recv(ctx, c)
		if err != nil {
			return
		}
		n := conns.Add(1)
		send := func(s string) { send(ctx, c, jsonToAny(t, s)) }
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
	p, err := c.Play(ctx, "w", PlayOptions{Encoding: enc, Player: "ann", AckInterval: time.Hour, HeadersOnly: headersOnly})
	require.NoError(t, err)
	defer p.Close()
	var (
		seqs   []uint64
		deltas int
	)
	for len(seqs) < 5 {
		ev, err := p.Next(ctx)
		require.NoError(t, err)
		seqs = append(seqs, ev.Seq)
		if ev.Seq == 1 {
			require.Equal(t, "critical", ev.Priority)
		}
		if ev.Status != DeltaStatus {
			continue
		}
		deltas++
		require.Equal(t, wire.Event{World: "w", Seq: 6, Priority: "bulk", Status: DeltaStatus}, wire.Event{World: ev.World, Seq: ev.Seq, Priority: ev.Priority, Status: ev.Status})
		if headersOnly {
			require.Nil(t, ev.Changes)
			require.Nil(t, ev.Versions)
			continue
		}
		x := wire.Int(1)
		require.Equal(t, []wire.Change{{Entity: "e", Op: "delete", Version: 2}, {Entity: "e", Field: "x", Op: "set", Value: &x, Version: 6}}, ev.Changes)
		require.Equal(t, map[string]map[string]uint64{"e": {"x": 6}}, ev.Versions)
	}
	require.Equal(t, []uint64{1, 2, 4, 6, 9}, seqs, "the repeated 4 is dropped, the empty delta skipped")
	require.Equal(t, 1, deltas)
	require.EqualValues(t, 1, p.Overlaps(), "the repeated 4 is counted")
	h := <-resumed
	require.Equal(t, "resume", h["type"])
	require.EqualValues(t, 7, h["last_seq"], "it resumes from what the frames covered")
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

// jsonToAny decodes a scripted JSON message into plain values, integral
// numbers as int64, so that either codec can send it.
func jsonToAny(t testing.TB, s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	var conv func(any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			if n, err := x.Int64(); err == nil {
				return n
			}
			f, _ := x.Float64()
			return f
		case map[string]any:
			for k, e := range x {
				x[k] = conv(e)
			}
		case []any:
			for i, e := range x {
				x[i] = conv(e)
			}
		}
		return v
	}
	return conv(v)
}

// A message of the other codec's WebSocket type ends the Play with 4400,
// and an unknown encoding is refused up front.
func TestPlayRefusesAMessageOfTheWrongTypeAndUnknownEncodings(t *testing.T) {
	for _, tc := range []struct {
		enc string
		typ websocket.MessageType
	}{{EncodingMsgpack, websocket.MessageText}, {EncodingJSON, websocket.MessageBinary}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{PlaySubprotocol, MsgpackSubprotocol}})
			if err != nil {
				return
			}
			defer c.CloseNow()
			if _, err := recv(r.Context(), c); err != nil {
				return
			}
			_ = c.Write(r.Context(), tc.typ, []byte(`{"type":"welcome","session":"s1"}`))
			_, _, _ = c.Read(r.Context())
		}))
		_, err := New([]string{srv.URL}, WithBackoff(time.Millisecond, 10*time.Millisecond)).Play(playCtx(t), "w", PlayOptions{Encoding: tc.enc, Player: "ann"})
		var ce *CloseError
		require.ErrorAs(t, err, &ce, tc.enc)
		require.Equal(t, 4400, ce.Code)
		require.Contains(t, ce.Reason, "undecodable")
		srv.Close()
	}
	_, err := New([]string{"http://127.0.0.1:1"}).Play(playCtx(t), "w", PlayOptions{Encoding: "cbor", Player: "ann"})
	require.ErrorContains(t, err, "unknown play encoding")
}
