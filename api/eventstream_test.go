package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// fanSubs returns how many fans serve world on n and how many streams they
// feed in all.
func fanSubs(n *node, world string) (fans, subs int) {
	return n.env.srv.events.Members(world)
}

// seqsOf reads n event lines and returns their seqs.
func seqsOf(t *testing.T, next func() map[string]any, n int) []uint64 {
	t.Helper()
	out := make([]uint64, 0, n)
	for range n {
		ev := next()
		require.NotNil(t, ev, "stream ended after %v", out)
		require.Contains(t, ev, "seq", "%v", ev)
		out = append(out, uint64(ev["seq"].(float64)))
	}
	return out
}

// Streams of one world and linger share one fan; a stream that stops
// reading is detached instead of holding the others up, and once it reads
// again it gets every event, in order, exactly once.
func TestEventStreamsShareAFanAndASlowStreamCatchesUpWithoutGaps(t *testing.T) {
	t.Parallel()
	for _, linger := range []string{"0s", "5ms"} {
		t.Run("linger="+linger, func(t *testing.T) {
			t.Parallel()
			slowStreamCatchesUp(t, linger)
		})
	}
}

func slowStreamCatchesUp(t *testing.T, linger string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	stalling := &apitest.StallingListener{Listener: ln}
	n := startNodeOn(t, "n1", true, stalling, func(c *Config) { c.StreamQueue = 2 })
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	e := n.env
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	first := act(t, n, incrBody)

	slow, _ := e.Stream("/v1/worlds/arena/events?from=1&linger=" + linger)
	require.Equal(t, []uint64{first}, seqsOf(t, slow, 1))
	// From now on the slow stream's writes make no progress; requests on
	// new connections are served as usual.
	stalling.StallAll()
	// Released before the node's cleanup even when the test fails early:
	// a stalled write ignores deadlines and would hold up Close.
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(stalling.Release) }
	t.Cleanup(release)
	e.TS.Client().CloseIdleConnections()
	fast, _ := e.Stream("/v1/worlds/arena/events?from=1&linger=" + linger)
	require.Equal(t, []uint64{first}, seqsOf(t, fast, 1))
	require.Eventually(t, func() bool {
		fans, subs := fanSubs(n, "arena")
		return fans == 1 && subs == 2
	}, 5*time.Second, 5*time.Millisecond, "both streams on one fan")

	// Act until the fan has let the slow stream go (its queue holds 2
	// chunks, so a few entries do it); the fast one sees each event.
	last := first
	for i := 2; testutil.ToFloat64(n.env.srv.Metrics().StreamDetaches) == 0; i++ {
		require.Less(t, i, 500, "the slow stream was never detached")
		last = act(t, n, actBody("p1", i))
		require.Equal(t, []uint64{last}, seqsOf(t, fast, 1))
	}
	_, subs := fanSubs(n, "arena")
	require.Equal(t, 1, subs, "the fast stream stays on the fan")

	release()
	require.Equal(t, seqRange(first+1, last), seqsOf(t, slow, int(last-first)), "every event once, in order")
	// Caught up, it attaches again and follows new events with the other.
	next := act(t, n, actBody("p1", int(last)+100))
	require.Equal(t, []uint64{next}, seqsOf(t, slow, 1))
	require.Equal(t, []uint64{next}, seqsOf(t, fast, 1))
	require.Eventually(t, func() bool {
		_, subs := fanSubs(n, "arena")
		return subs == 2
	}, 5*time.Second, 5*time.Millisecond)
}

// An HTTP/1.1 stream is written as a chunked body on the connection the
// stream took over: valid framing, the usual header fields, the error line
// when the feed fails and a proper end of the body.
func TestEventStreamRawChunkedFraming(t *testing.T) {
	t.Parallel()
	n, seq, resp := rawEventStream(t, "GET /v1/worlds/arena/events?from=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, []string{"chunked"}, resp.TransferEncoding)
	require.True(t, resp.Close, "Connection: close")
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	sc := bufio.NewScanner(resp.Body)
	require.True(t, sc.Scan())
	var ev struct{ Seq uint64 }
	require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
	require.Equal(t, seq, ev.Seq)
	require.NoError(t, n.st.Close(context.Background()))
	require.True(t, sc.Scan())
	require.Contains(t, sc.Text(), `"code":"unavailable"`)
	require.False(t, sc.Scan())
	require.NoError(t, sc.Err(), "the chunked body ends properly")
}

// An HTTP/1.0 client gets the stream through net/http (no chunking to take
// over): the same events.
func TestEventStreamHTTP10(t *testing.T) {
	t.Parallel()
	n, seq, resp := rawEventStream(t, "GET /v1/worlds/arena/events?from=1 HTTP/1.0\r\n\r\n")
	require.Empty(t, resp.TransferEncoding)
	sc := bufio.NewScanner(resp.Body)
	require.True(t, sc.Scan())
	var ev struct{ Seq uint64 }
	require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
	require.Equal(t, seq, ev.Seq)
	seq2 := act(t, n, actBody("p1", 2))
	require.True(t, sc.Scan())
	require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
	require.Equal(t, seq2, ev.Seq)
}

// A client that closes its connection ends the taken-over stream even when
// no event comes (nothing to write would tell).
func TestEventStreamEndsWhenTheClientCloses(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	_, stop := e.Stream("/v1/worlds/arena/events")
	require.Eventually(t, func() bool {
		_, subs := fanSubs(n, "arena")
		return subs == 1
	}, 5*time.Second, 5*time.Millisecond)
	stop()
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(e.srv.Metrics().Streams) == 0
	}, 5*time.Second, 5*time.Millisecond)
}

// Closing the server ends a fan waiting out its linger, and its streams.
func TestServerCloseEndsALingeringFan(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env
	code, _ := e.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	next, _ := e.Stream("/v1/worlds/arena/events?linger=5s")
	require.Eventually(t, func() bool {
		_, subs := fanSubs(n, "arena")
		return subs == 1
	}, 5*time.Second, 5*time.Millisecond)
	seq := act(t, n, incrBody)
	require.Equal(t, []uint64{seq}, seqsOf(t, next, 1)) // the fan now lingers 5 s
	e.srv.Close()
	require.Nil(t, next(), "the stream ends when the server closes")
	fans, _ := fanSubs(n, "arena")
	require.Zero(t, fans)
}

// rawEventStream starts a leader with world arena and one event (seq), sends
// request on a raw connection and returns the 200 response, whose body the
// test reads.
func rawEventStream(t *testing.T, request string) (*node, uint64, *http.Response) {
	t.Helper()
	n := startLeader(t)
	code, _ := n.env.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	seq := act(t, n, incrBody)
	conn, err := net.Dial("tcp", strings.TrimPrefix(n.env.TS.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = conn.Write([]byte(request))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	return n, seq, resp
}
