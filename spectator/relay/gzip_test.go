package relay

import (
	"compress/gzip"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The relay asks its upstream for a gzipped stream (compress=gzip, and
// Accept-Encoding: gzip of its own, so that it decodes whatever its
// client's transport does) and reads it as it reads a plain one; an
// upstream that answers plain NDJSON (an older node) is read as before.
// It asks for the default linger (a window of events per write).
func TestFollowReadsAGzippedUpstreamAndAPlainOne(t *testing.T) {
	var asked atomic.Int32
	gzipped := func(ls ...string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("linger") != DefaultUpstreamLinger.String() {
				http.Error(w, "want the default linger", http.StatusBadRequest)
				return
			}
			if r.URL.Query().Get("compress") != "gzip" || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				lines(ls...)(w, r)
				return
			}
			asked.Add(1)
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			for _, l := range ls {
				_, _ = zw.Write([]byte(l))
			}
			_ = zw.Flush() // a sync flush: the lines, no trailer while the stream lasts
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}
	up := newFake(t, gzipped(line(t, 1, 1), line(t, 2, 2)))
	_, base := startRelay(t, up, "", nil)
	require.Equal(t, []uint64{1, 2}, seqs(t, readEvents(t, base, "", 1, 2)))
	require.Positive(t, asked.Load(), "the relay asked for gzip")

	plain := newFake(t, hang(line(t, 1, 1), line(t, 2, 2)))
	_, base = startRelay(t, plain, "", nil)
	require.Equal(t, []uint64{1, 2}, seqs(t, readEvents(t, base, "", 1, 2)))
}

// A body that says gzip but is not ends the follow's read with an error
// naming the gzip stream (the follow retries, as after any drop).
func TestGunzipBodyNamesABrokenStream(t *testing.T) {
	g := &gunzipBody{body: nopCloser{strings.NewReader("not gzip")}}
	_, err := g.Read(make([]byte, 8))
	require.ErrorContains(t, err, "gzipped stream")
	require.NoError(t, g.Close())
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// UpstreamLinger is a linger the upstream accepts: 0 to 5 s.
func TestConfigRefusesAnUpstreamLingerTheUpstreamWouldNot(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, maxLinger + time.Millisecond} {
		cfg := DefaultConfig()
		cfg.Upstream, cfg.UpstreamLinger = "http://127.0.0.1:1", d
		require.ErrorContains(t, cfg.Validate(), "UpstreamLinger", d)
	}
	cfg := DefaultConfig()
	cfg.Upstream, cfg.UpstreamLinger = "http://127.0.0.1:1", 0
	require.NoError(t, cfg.Validate())
}
