package relay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// gunzipSoFar returns what the gzip stream b decodes to so far: a stream
// still open has no trailer yet, only sync-flushed blocks.
func gunzipSoFar(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	if err != nil {
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "%q", out)
	}
	return out
}

// rebuildLean returns the whole lines of lean stream b of world, as a relay
// rebuilds them (a line that names its world is whole already); lean
// counts the lean ones.
func rebuildLean(t *testing.T, world string, b []byte) (whole []byte, lean int) {
	t.Helper()
	var out bytes.Buffer
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		require.True(t, bytes.HasSuffix(l, []byte("\n")), "a line cut short: %q", l)
		_, _, line, err := parseLeanLine(l, world)
		require.NoError(t, err, "%s", l)
		if !bytes.HasPrefix(l, []byte(`{"world":`)) {
			lean++
		}
		out.Write(line)
	}
	return out.Bytes(), lean
}

// played is a real node after play with a secret, and the public view's
// stream of it (want, to seq last) as a relay's token (viewer) reads it.
type played struct {
	n      *node
	viewer string
	last   uint64
	want   []byte
}

func playNode(t *testing.T, secret string) played {
	t.Helper()
	p := played{n: startNode(t), viewer: token(t, "relay", "")}
	p.last = play(t, p.n, secret)
	p.want = readEvents(t, p.n.url, p.viewer, 1, p.last)
	return p
}

// eventBytes is what r counted of its event streams in form and
// compression.
func eventBytes(r *Relay, form, compress string) float64 {
	return testutil.ToFloat64(r.metrics.eventBytes.WithLabelValues(form, compress))
}

// A chain node → relay A → relay B → viewer delivers the node's lines
// byte for byte, gzipped and lean on both hops: B's requests to A ask
// for both and A answers both (the bytes on that hop are lean lines in
// one gzip member that rebuild to the node's). The hidden field appears
// on no hop. When the A → B hop drops, B resumes from the seq after the
// last it holds, and its viewers miss nothing and get nothing twice.
func TestRelayChainIsGzippedAndLeanOnEveryHopAndResumes(t *testing.T) {
	p := playNode(t, "the-dragon-sleeps")
	n, viewer, last, want := p.n, p.viewer, p.last, p.want
	ra, a := startRelay(t, n.url, viewer, nil)
	hop, aHop := newCutter(t, a)
	rb, b := startRelay(t, aHop, "", nil)
	got := readEvents(t, b, "", 1, last)
	require.Equal(t, string(want), string(got))
	for _, s := range [][]byte{want, got} {
		require.NotContains(t, string(s), "the-dragon-sleeps")
		require.NotContains(t, string(s), "secret")
	}

	// The A → B hop: asked and answered gzipped and lean.
	as := hop.recorded()
	require.Len(t, as, 1)
	require.Equal(t, "gzip", as[0].query.Get("compress"))
	require.Equal(t, wire.EventFormLean, as[0].query.Get("form"))
	require.Equal(t, "1", as[0].query.Get("from"))
	require.Equal(t, "gzip", as[0].header.Get("Content-Encoding"))
	require.Equal(t, wire.EventFormLean, as[0].header.Get(wire.EventFormHeader))
	var plain []byte
	require.Eventually(t, func() bool {
		plain = gunzipSoFar(t, as[0].sent())
		return bytes.Count(plain, []byte("\n")) == len(seqs(t, want))
	}, 10*time.Second, 5*time.Millisecond)
	rebuilt, lean := rebuildLean(t, "arena", plain)
	require.Equal(t, string(want), string(rebuilt))
	require.Equal(t, len(seqs(t, want)), lean, "every line lean")
	require.NotContains(t, string(plain), "secret")
	require.NotContains(t, string(plain), `"world"`)
	require.Less(t, len(as[0].sent()), len(want), "gzipped lean bytes on the hop")

	// Each relay's metrics: A served B gzipped lean bytes and nothing
	// else; B served its viewer plain whole ones; both received lean.
	require.Eventually(t, func() bool { // counted once flushed
		return float64(len(as[0].sent())) == eventBytes(ra, wire.EventFormLean, "gzip")
	}, 10*time.Second, 5*time.Millisecond)
	require.Zero(t, eventBytes(ra, wire.EventFormWhole, "none"))
	require.Eventually(t, func() bool { return float64(len(got)) == eventBytes(rb, wire.EventFormWhole, "none") },
		10*time.Second, 5*time.Millisecond)
	require.Zero(t, eventBytes(rb, wire.EventFormLean, "gzip"))
	for _, r := range []*Relay{ra, rb} {
		require.Less(t, testutil.ToFloat64(r.metrics.received), float64(len(want)), "lean lines received")
	}

	// Drop the hop; B resumes from the seq after the last it holds.
	require.Equal(t, 1, hop.cut())
	require.Eventually(t, func() bool { return len(hop.recorded()) == 2 }, 10*time.Second, 5*time.Millisecond)
	again := hop.recorded()[1]
	require.Equal(t, fmt.Sprint(last+1), again.query.Get("from"))
	require.Equal(t, wire.EventFormLean, again.header.Get(wire.EventFormHeader))
	more := n.act(t, "e2", 3, "the-dragon-wakes")
	more = max(more, n.act(t, "e1", 4, ""))
	want = readEvents(t, n.url, viewer, 1, more)
	require.Equal(t, string(want), string(readEvents(t, b, "", 1, more)), "each seq once, none missed")
	require.NotContains(t, string(want), "the-dragon-wakes")
	require.Positive(t, testutil.ToFloat64(rb.metrics.reconnects))
}

// rawEvents opens base's event stream of arena with query, asking for
// gzip in Accept-Encoding when gz, with a transport that decodes
// nothing; the stream ends with the test.
func rawEvents(t *testing.T, base, query string, gz bool) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/worlds/arena/events?from=1"+query, nil)
	require.NoError(t, err)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readLines reads n lines from rd.
func readLines(t *testing.T, rd io.Reader, n int) []byte {
	t.Helper()
	br := bufio.NewReader(rd)
	var out bytes.Buffer
	for range n {
		l, err := br.ReadBytes('\n')
		require.NoError(t, err, "after %s", out.Bytes())
		out.Write(l)
	}
	return out.Bytes()
}

// A relay's events route answers the forms a node's does: no form= or
// form=whole whole lines, form=lean lean ones (with the header), gzipped
// only for compress=gzip with gzip in Accept-Encoding; another value of
// either is 400 malformed, as on a node.
func TestRelayEventsAnswersEachFormAsANodeDoes(t *testing.T) {
	p := playNode(t, "the-dragon-sleeps")
	_, a := startRelay(t, p.n.url, p.viewer, nil)
	want := p.want
	count := len(seqs(t, want))

	for _, tc := range []struct {
		query    string
		acceptGz bool
		gz, lean bool
	}{
		{"", true, false, false},
		{"&form=whole", false, false, false},
		{"&form=whole&compress=gzip", true, true, false},
		{"&compress=gzip", false, false, false}, // gzip not accepted: plain
		{"&form=lean", false, false, true},
		{"&form=lean&compress=gzip", true, true, true},
	} {
		name := fmt.Sprintf("%s accept-gzip=%v", tc.query, tc.acceptGz)
		resp := rawEvents(t, a, tc.query, tc.acceptGz)
		require.Equal(t, http.StatusOK, resp.StatusCode, name)
		var body io.Reader = resp.Body
		if tc.gz {
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"), name)
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err, name)
			body = zr
		} else {
			require.Empty(t, resp.Header.Get("Content-Encoding"), name)
		}
		if strings.Contains(tc.query, "compress") {
			require.Equal(t, "Accept-Encoding", resp.Header.Get("Vary"), name)
		}
		got := readLines(t, body, count)
		if !tc.lean {
			require.Empty(t, resp.Header.Get(wire.EventFormHeader), name)
			require.Equal(t, string(want), string(got), name)
			continue
		}
		require.Equal(t, wire.EventFormLean, resp.Header.Get(wire.EventFormHeader), name)
		rebuilt, lean := rebuildLean(t, "arena", got)
		require.Equal(t, string(want), string(rebuilt), name)
		require.Equal(t, count, lean, name)
	}
	for _, q := range []string{"&form=tiny", "&compress=br"} {
		code, body := get(t, a+"/v1/worlds/arena/events?from=1"+q)
		require.Equal(t, http.StatusBadRequest, code, q)
		require.Contains(t, body, wire.CodeMalformed, q)
	}
}

// A relay that had to fall back to whole lines (its upstream's lean line
// had a key it does not know: f.whole) still serves a relay downstream
// correct lines: the line with the new key goes whole on the A → B hop
// (A cannot cut it: wire.AppendLeanLine), as does one the lean form
// cannot carry exactly (a float -0), the others lean; B serves the
// upstream's whole lines byte for byte.
func TestRelayChainBehindAWholeFallbackServesTheUpstreamsLines(t *testing.T) {
	up, whole, _, _ := newerUpstream(t, 4, func(whole []string) {
		whole[3] = strings.Replace(whole[3], `"value":4`, `"value":-0`, 1)
		require.Contains(t, whole[3], `"value":-0`)
	})
	ra, a := startRelay(t, up, "", nil)
	hop, aHop := newCutter(t, a)
	_, b := startRelay(t, aHop, "", nil)
	require.Equal(t, strings.Join(whole, ""), string(readEvents(t, b, "", 1, 4)))
	ra.mu.Lock()
	fa := ra.follows["arena"]
	ra.mu.Unlock()
	require.True(t, fa.whole.Load(), "A fell back to whole lines")
	as := hop.recorded()
	require.Len(t, as, 1, "B never had to ask again")
	require.Equal(t, wire.EventFormLean, as[0].header.Get(wire.EventFormHeader))
	var plain []byte
	require.Eventually(t, func() bool {
		plain = gunzipSoFar(t, as[0].sent())
		return bytes.Count(plain, []byte("\n")) == 4
	}, 10*time.Second, 5*time.Millisecond)
	sent := strings.SplitAfter(string(plain), "\n")
	require.Equal(t, whole[1], sent[1], "the line with the new key: whole")
	require.Equal(t, whole[3], sent[3], "the float -0: whole")
	for _, i := range []int{0, 2} {
		require.Equal(t, string(wire.AppendLeanForm(nil, []byte(whole[i]))), sent[i])
		require.NotContains(t, sent[i], `"world"`)
	}
}

// failWriter takes ok bytes, then fails every write.
type failWriter struct{ ok int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.ok {
		return 0, io.ErrClosedPipe
	}
	f.ok -= len(p)
	return len(p), nil
}

// An event stream whose viewer is gone ends at the failed write, plain
// or gzipped (a failed header, or a failed flush of the compressor), and
// counts nothing sent.
func TestRelayEventsOutEndsAtAFailedWrite(t *testing.T) {
	r := hopRelay(t)
	hs := chainMix(t, 3, 1)
	rec := httptest.NewRecorder()
	for _, ok := range []int{0, 10} { // 10: a gzip header's bytes
		for _, f := range hopForms {
			out := r.newEventsOut(&failWriter{ok: ok}, http.NewResponseController(rec), f.form)
			require.ErrorIs(t, out.write(hs), io.ErrClosedPipe, f.name)
			out.end()
			form, compress := f.form.Label()
			require.Zero(t, eventBytes(r, form, compress), f.name)
		}
	}
	require.Zero(t, testutil.ToFloat64(r.metrics.bytes))
}
