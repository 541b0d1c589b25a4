package api

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// gzipLines reads a gzipped NDJSON body line by line on a goroutine of its
// own, so that a test fails instead of hanging when a line does not come.
// lines is closed at the end of the body; err then holds how it ended.
type gzipLines struct {
	lines chan string
	err   error
}

func readGzipLines(t *testing.T, body io.Reader) *gzipLines {
	t.Helper()
	g := &gzipLines{lines: make(chan string, 64)}
	go func() {
		defer close(g.lines)
		zr, err := gzip.NewReader(body)
		if err != nil {
			g.err = err
			return
		}
		zr.Multistream(false)
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			g.lines <- sc.Text()
		}
		if g.err = sc.Err(); g.err == nil {
			_, g.err = io.Copy(io.Discard, zr) // the trailer's checksum is checked at EOF
		}
	}()
	return g
}

// next returns the next line; it fails the test when the stream ends or
// nothing comes within a long bound (a line that is never flushed).
func (g *gzipLines) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-g.lines:
		if !ok {
			t.Fatalf("the stream ended: %v", g.err) // err is read after the close only
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line: the compressed stream was not flushed")
	}
	return ""
}

// end waits for the end of the body and returns how it ended.
func (g *gzipLines) end(t *testing.T) error {
	t.Helper()
	for {
		select {
		case l, ok := <-g.lines:
			require.False(t, ok, "a line after the last: %s", l)
			return g.err
		case <-time.After(10 * time.Second):
			t.Fatal("the compressed stream did not end")
		}
	}
}

func seqOfLine(t *testing.T, line string) uint64 {
	t.Helper()
	var ev struct{ Seq uint64 }
	require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
	return ev.Seq
}

// compress=gzip with Accept-Encoding: gzip: one gzip member whose every
// flush reaches the reader at once (each event is read before the next is
// written), the error line when the store stops, and a trailer whose
// checksum holds; the bytes counted are the compressed ones.
func TestEventStreamGzipFlushesEachWindowAndEndsWithATrailer(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			host := "Host: x\r\n"
			n, seq, resp := rawEventStream(t, "GET /v1/worlds/arena/events?from=1&compress=gzip "+proto+"\r\n"+host+"Accept-Encoding: br, gzip;q=0.5\r\n\r\n")
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			require.Equal(t, "Accept-Encoding", resp.Header.Get("Vary"))
			g := readGzipLines(t, resp.Body)
			require.Equal(t, seq, seqOfLine(t, g.next(t)))
			var plain int
			for i := 2; i <= 30; i++ {
				s := act(t, n, actBody("p1", i))
				line := g.next(t)
				require.Equal(t, s, seqOfLine(t, line), "each event arrives before the next is written")
				plain += len(line) + 1
			}
			require.Less(t, testutil.ToFloat64(n.env.srv.Metrics().StreamBytes), float64(plain),
				"the stream's bytes are counted compressed (repeated lines compress)")
			require.NoError(t, n.st.Close(context.Background()))
			require.Contains(t, g.next(t), `"code":"unavailable"`)
			require.NoError(t, g.end(t), "the member ends with a valid trailer")
		})
	}
}

// compress=gzip without gzip in Accept-Encoding (or with q=0) is served as
// plain NDJSON; another compress value is malformed; plain requests are
// as before.
func TestEventStreamGzipNeedsAcceptEncodingAndAKnownValue(t *testing.T) {
	t.Parallel()
	for _, hdr := range []string{"", "Accept-Encoding: gzip;q=0\r\n", "Accept-Encoding: identity\r\n"} {
		_, seq, resp := rawEventStream(t, "GET /v1/worlds/arena/events?from=1&compress=gzip HTTP/1.1\r\nHost: x\r\n"+hdr+"\r\n")
		require.Empty(t, resp.Header.Get("Content-Encoding"), hdr)
		require.Equal(t, "Accept-Encoding", resp.Header.Get("Vary"))
		sc := bufio.NewScanner(resp.Body)
		require.True(t, sc.Scan())
		require.Equal(t, seq, seqOfLine(t, sc.Text()))
	}
	n := startLeader(t)
	code, _ := n.env.DoJSON("POST", "/v1/worlds", `{"id":"arena"}`)
	require.Equal(t, 201, code)
	n.env.RequireError(http.StatusBadRequest, "malformed", "GET", "/v1/worlds/arena/events?compress=zstd", "", "Accept-Encoding", "gzip")
	_, seq, resp := rawEventStream(t, "GET /v1/worlds/arena/events?from=1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
	require.Empty(t, resp.Header.Get("Content-Encoding"), "asked for by compress=, not by Accept-Encoding alone")
	require.Empty(t, resp.Header.Get("Vary"))
	sc := bufio.NewScanner(resp.Body)
	require.True(t, sc.Scan())
	require.Equal(t, seq, seqOfLine(t, sc.Text()))
}
