package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func eventLine(seq uint64) string {
	b, _ := json.Marshal(wire.Event{World: "arena", Seq: seq, Index: seq + 10, Player: "p", ClientSeq: seq, Priority: "critical", Status: "applied"})
	return string(b) + "\n"
}

func fromParam(r *http.Request) uint64 {
	n, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	return n
}

func TestEventsReadsNDJSONUntilAnErrorLine(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		from := fromParam(r)
		io.WriteString(w, eventLine(from))
		io.WriteString(w, "\n{}\n") // keep-alives
		io.WriteString(w, eventLine(from+1))
		io.WriteString(w, `{"code":"archive_gap","error":"compacted"}`+"\n")
	})
	c := newTestClient(t, []string{node.URL})
	s, err := c.Events(context.Background(), "arena", 4)
	require.NoError(t, err)
	defer s.Close()
	ev, err := s.Next()
	require.NoError(t, err)
	require.Equal(t, uint64(4), ev.Seq)
	ev, err = s.Next()
	require.NoError(t, err)
	require.Equal(t, uint64(5), ev.Seq)
	require.Equal(t, uint64(6), s.Position())
	_, err = s.Next()
	require.Equal(t, &Error{Status: http.StatusGone, Code: CodeArchiveGap, Message: "compacted"}, err)
	require.Equal(t, "/v1/worlds/arena/events", node.requests()[0].Path)
	require.Equal(t, "from=4", node.requests()[0].Query)

	lc := newTestClient(t, []string{node.URL}, WithEventLinger(100*time.Millisecond))
	ls, err := lc.Events(context.Background(), "arena", 4)
	require.NoError(t, err)
	ls.Close()
	require.Equal(t, "from=4&linger=100ms", node.requests()[1].Query)
}

func TestEventsEndAndBreak(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			io.WriteString(w, eventLine(1)) // then a clean end
		case 2:
			io.WriteString(w, eventLine(1)+`{"world":"arena","se`) // cut mid-line
		case 3:
			io.WriteString(w, eventLine(1)+eventLine(3)) // skips seq 2
		case 4:
			io.WriteString(w, "{oops}\n")
		}
	})
	c := newTestClient(t, []string{node.URL})
	ctx := context.Background()

	s, err := c.Events(ctx, "arena", 1)
	require.NoError(t, err)
	_, err = s.Next()
	require.NoError(t, err)
	_, err = s.Next()
	require.ErrorIs(t, err, io.EOF)
	s.Close()

	s, err = c.Events(ctx, "arena", 1)
	require.NoError(t, err)
	_, err = s.Next()
	require.NoError(t, err)
	_, err = s.Next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.True(t, IsRetryable(err))
	s.Close()

	s, err = c.Events(ctx, "arena", 1)
	require.NoError(t, err)
	_, err = s.Next()
	require.NoError(t, err)
	_, err = s.Next()
	require.ErrorIs(t, err, ErrGap)
	s.Close()

	s, err = c.Events(ctx, "arena", 1)
	require.NoError(t, err)
	_, err = s.Next()
	require.ErrorContains(t, err, "decode event")
	s.Close()
}

func TestEventsOpenFailsOverAndReportsErrors(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/v1/worlds/nope/events" {
			writeErr(w, http.StatusNotFound, CodeUnknownWorld, "nope")
			return
		}
		io.WriteString(w, eventLine(7)) // from=0: whatever comes next
	})
	c := newTestClient(t, []string{deadAddr(t), node.URL})
	_, err := c.Events(context.Background(), "nope", 1)
	require.Equal(t, CodeUnknownWorld, Code(err))

	s, err := c.Events(context.Background(), "arena", 0)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, uint64(0), s.Position())
	ev, err := s.Next()
	require.NoError(t, err)
	require.Equal(t, uint64(7), ev.Seq)
	require.Equal(t, uint64(8), s.Position())
}

func TestEventsNextReturnsContextErrorAfterCancel(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := newTestClient(t, []string{node.URL})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Events(ctx, "arena", 1)
	require.NoError(t, err)
	cancel()
	_, err = s.Next()
	require.ErrorIs(t, err, context.Canceled)
	s.Close()
}

// streamServer serves events [from, limit] and, on the first connection,
// breaks after `breakAfter` events; reconnections also repeat the event
// before `from` to check that Follow drops repeats.
type streamServer struct {
	mu    sync.Mutex
	froms []uint64
}

func (ss *streamServer) handler(limit, breakAfter uint64, repeat bool) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		from := fromParam(r)
		ss.mu.Lock()
		ss.froms = append(ss.froms, from)
		ss.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		if repeat && from > 1 {
			io.WriteString(w, eventLine(from-1))
		}
		sent := uint64(0)
		for seq := from; seq <= limit; seq++ {
			if sent == breakAfter {
				// Break the connection mid-line, like a crashed node.
				io.WriteString(w, `{"world":"arena","seq":`)
				w.(http.Flusher).Flush()
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			io.WriteString(w, eventLine(seq))
			sent++
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

func TestFollowResumesWithoutGapsOrDuplicates(t *testing.T) {
	ss := &streamServer{}
	node := newFakeNode(t, ss.handler(9, 3, true))
	c := newTestClient(t, []string{node.URL})
	var got []uint64
	stop := errors.New("stop")
	err := c.Follow(context.Background(), "arena", 1, func(ev wire.Event) error {
		got = append(got, ev.Seq)
		if ev.Seq == 9 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}, got)
	require.Equal(t, []uint64{1, 4, 7}, ss.froms)
}

func TestFollowMovesToAnotherNodeWhenOneDies(t *testing.T) {
	first := &streamServer{}
	a := newFakeNode(t, first.handler(100, 2, false))
	second := &streamServer{}
	b := newFakeNode(t, second.handler(5, 100, false))
	c := newTestClient(t, []string{a.URL, b.URL})
	var got []uint64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := c.Follow(ctx, "arena", 1, func(ev wire.Event) error {
		got = append(got, ev.Seq)
		if ev.Seq == 2 {
			a.CloseClientConnections()
			a.Listener.Close() // node a is gone for good
		}
		if ev.Seq == 5 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, got)
	require.Equal(t, []uint64{3}, second.froms)
}

func TestFollowStopsOnErrorsThatReconnectingCannotFix(t *testing.T) {
	node := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			io.WriteString(w, eventLine(1))
			return // clean end: reconnect
		}
		io.WriteString(w, `{"code":"archive_gap","error":"seq 2 compacted"}`+"\n")
	})
	c := newTestClient(t, []string{node.URL})
	var got []uint64
	err := c.Follow(context.Background(), "arena", 1, func(ev wire.Event) error {
		got = append(got, ev.Seq)
		return nil
	})
	require.Equal(t, CodeArchiveGap, Code(err))
	require.Equal(t, []uint64{1}, got)
	require.Equal(t, "from=2", node.requests()[1].Query)

	bad := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeErr(w, http.StatusNotFound, CodeUnknownWorld, "x")
	})
	err = newTestClient(t, []string{bad.URL}).Follow(context.Background(), "x", 1, func(wire.Event) error { return nil })
	require.Equal(t, CodeUnknownWorld, Code(err))
}

func ExampleClient_Follow() {
	c := New([]string{"127.0.0.1:7070", "127.0.0.1:7080"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = c.Follow(ctx, "arena", 1, func(ev wire.Event) error {
		fmt.Println(ev.Seq, ev.Status)
		return nil
	})
}
