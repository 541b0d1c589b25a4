package streams

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The relay upstream's ruler (issue 13): the bytes a voter sends a relay
// per event, and the voter's CPU per event for that stream, on the
// spectator-influx players' mix (relaymix_test.go). The ruler drives the
// stream's own writing path: the output the handler builds for the
// relay's query (Service.output: counted, gzipped), fed one fan chunk
// per linger window (eventStream.follow writes each with one WriteChunk:
// one sync flush), as a relay's lingering stream is. At 200 events/s and
// the relay's 50 ms linger a window holds 10 events. The bytes counted
// are the compressed ones the node's stream metric counts (not HTTP's
// chunk framing, nor TCP's); they depend only on the events, so they are
// the same on every run and on any machine. Forms: plain (whole lines,
// uncompressed), gzip (whole lines, compress=gzip: what relays asked
// before the lean form), lean and lean+gzip (form=lean: what relays ask).
//
//	go test -run '^$' -bench RelayUpstream -benchtime 20x ./api/streams/

// upstreamWindow is the events per linger window: 200 events/s × 50 ms.
const upstreamWindow = 10

// relayForm is the encoding a relay's query asks for.
type relayForm struct {
	gzip bool
	lean bool // form=lean
}

// upstreamBytes streams evs as one relay's stream asked in form, window
// events per chunk, and returns the bytes the node sent.
// The fan's encoder takes the whole lines from wc (lean ones are cut
// from them).
func upstreamBytes(tb testing.TB, s *Service, wc *edge.WireCache, evs []*fsm.Event, window int, form relayForm) []byte {
	tb.Helper()
	var sent bufOut
	out, closeOut := s.output(&sent, form.gzip)
	st := &eventStream{s: s, out: out, world: relayMixWorld, next: evs[0].Seq, lean: form.lean}
	enc := wc.NDJSON
	if form.lean {
		enc = leanNDJSON(wc)
	}
	ch := make(chan *fanout.Chunk, (len(evs)+window-1)/window)
	for i := 0; i < len(evs); i += window {
		c, err := fanout.NewChunk(enc, evs[i].Seq, evs[i:min(i+window, len(evs))])
		require.NoError(tb, err)
		ch <- c
	}
	close(ch)
	require.True(tb, st.follow(context.Background(), ch, nil))
	closeOut()
	return sent.Bytes()
}

// decodeUpstream returns the NDJSON lines a relay reads from sent, lean
// ones rebuilt whole (wire.LeanEvent.Event).
func decodeUpstream(tb testing.TB, sent []byte, form relayForm) []string {
	tb.Helper()
	var rd io.Reader = bytes.NewReader(sent)
	if form.gzip {
		zr, err := gzip.NewReader(rd)
		require.NoError(tb, err)
		rd = zr
	}
	var lines []string
	sc := bufio.NewScanner(rd)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !form.lean || bytes.HasPrefix(sc.Bytes(), []byte(`{"world":`)) { // a whole line
			lines = append(lines, sc.Text())
			continue
		}
		var l wire.LeanEvent
		require.NoError(tb, json.Unmarshal(sc.Bytes(), &l))
		whole, err := json.Marshal(l.Event(relayMixWorld))
		require.NoError(tb, err)
		lines = append(lines, string(whole))
	}
	require.NoError(tb, sc.Err())
	return lines
}

// cpuTime returns the process's CPU time so far (user and system).
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// upstreamService is a service over a one-node store holding the mix.
func upstreamService(tb testing.TB, n int) (*Service, []*fsm.Event) {
	node := relayMixStore(tb)
	evs := relayMix(tb, node, n, 1)
	return &Service{Core: apitest.Core(tb, node, nil)}, evs
}

// The ruler measures what a relay reads: every event's line, whole and
// in order, whatever the form, and the same bytes on every run.
func TestRelayUpstreamRulerSendsEveryLine(t *testing.T) {
	t.Parallel()
	s, evs := upstreamService(t, 300)
	var want []string
	for _, ev := range evs {
		line, err := s.Wire().Line(ev)
		require.NoError(t, err)
		want = append(want, string(bytes.TrimSuffix(line, []byte("\n"))))
	}
	for _, form := range []relayForm{{}, {gzip: true}, {lean: true}, {gzip: true, lean: true}} {
		sent := upstreamBytes(t, s, s.Wire(), evs, upstreamWindow, form)
		require.Equal(t, want, decodeUpstream(t, sent, form), "%+v", form)
		again := upstreamBytes(t, s, new(edge.WireCache), evs, upstreamWindow, form)
		require.Equal(t, sent, again, "%+v: the same bytes again", form)
	}
}

// BenchmarkRelayUpstream reports, per relay form, the bytes a voter sends
// a relay per event (B/event: deterministic) and the voter's CPU for the
// stream per event (cpu-ns/event: the process's CPU time, so waiting for
// the cores does not count, for the lines' encoding, the compression and
// the writes into memory; still rough on a busy machine).
func BenchmarkRelayUpstream(b *testing.B) {
	s, evs := upstreamService(b, 3000)
	// Whole lines encoded already (for players' frames or other
	// followers: the node's line cache): the stream's own cost is then
	// its compression only.
	cached := new(edge.WireCache)
	for _, ev := range evs {
		_, err := cached.Line(ev)
		require.NoError(b, err)
	}
	for _, tc := range []struct {
		name   string
		form   relayForm
		cached bool
	}{
		{"plain", relayForm{}, false}, {"gzip", relayForm{gzip: true}, false},
		{"gzip,lines-cached", relayForm{gzip: true}, true},
		{"lean", relayForm{lean: true}, false}, {"lean+gzip", relayForm{gzip: true, lean: true}, false},
		{"lean+gzip,lines-cached", relayForm{gzip: true, lean: true}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var sent []byte
			start := cpuTime(b)
			for range b.N {
				wc := cached
				if !tc.cached {
					wc = new(edge.WireCache) // a fresh line cache: each run encodes the lines
				}
				sent = upstreamBytes(b, s, wc, evs, upstreamWindow, tc.form)
			}
			b.ReportMetric(float64(len(sent))/float64(len(evs)), "B/event")
			b.ReportMetric(float64(len(sent))/float64(len(evs))*200/1000, "kB/s@200ev/s") // spectator-influx's rate
			b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N*len(evs)), "cpu-ns/event")
		})
	}
}
