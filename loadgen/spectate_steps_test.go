package loadgen

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/spectator/relay"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestParseStepsReadsAscendingCounts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  string
	}{
		{in: "0,1000,10000", want: []int{0, 1000, 10000}},
		{in: " 5 ", want: []int{5}},
		{in: "0, 20", want: []int{0, 20}},
		{in: "", err: "not a count"},
		{in: "0,x", err: "not a count"},
		{in: "-1", err: "not a count"},
		{in: "10,10", err: "ascending"},
		{in: "10,5", err: "ascending"},
	} {
		got, err := ParseSteps(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestUsageSumsTheProcessesReadTwice(t *testing.T) {
	a := []procSnap{{cpu: time.Second, rssKB: 1024, wchar: 100, ok: true}, {cpu: 0, ok: true}, {}}
	b := []procSnap{{cpu: 1500 * time.Millisecond, rssKB: 2048, wchar: 300, ok: true}, {}, {cpu: time.Second, ok: true}}
	u := usageOf(a, b, 2)
	require.Equal(t, 1, u.Procs, "only the first was read both times")
	require.InDelta(t, 25, u.CPUPercent, 1e-9)
	require.InDelta(t, 2, u.RSSMB, 1e-9)
	require.InDelta(t, 100, u.WriteBytesPerS, 1e-9)
	require.Zero(t, usageOf(a, a, 0).Procs, "no time, no figures")
}

func TestSnapProcsReadsThisProcessAndSkipsTheAbsent(t *testing.T) {
	s := snapProcs([]Proc{Self(), {Name: "gone", PID: func() int { return 0 }}, {Name: "none", PID: func() int { return 1 << 30 }}})
	require.True(t, s[0].ok)
	require.Positive(t, s[0].rssKB)
	require.False(t, s[1].ok)
	require.False(t, s[2].ok)
	_, err := readWchar(1 << 30)
	require.Error(t, err)
}

func TestStepFiguresCompareEveryStepWithTheFirstPerThousand(t *testing.T) {
	steps := []spectatorStep{
		{Spectators: 0, PlayerP99: 10, Voters: usage{Procs: 3, CPUPercent: 60, WriteBytesPerS: 1e6}, VoterStreamBytesPerS: 1000,
			Relays: usage{Procs: 1, CPUPercent: 1, RSSMB: 20}, Loadgen: usage{Procs: 1, CPUPercent: 30}, FullStreamBytesPerS: 5000},
		{Spectators: 2000, Watching: 2000, PlayerP99: 10.5, Voters: usage{Procs: 3, CPUPercent: 62, WriteBytesPerS: 1.1e6}, VoterStreamBytesPerS: 2000,
			Relays: usage{Procs: 1, CPUPercent: 41, RSSMB: 60}, Loadgen: usage{Procs: 1, CPUPercent: 50},
			SpectatorBytesPerS: 2000 * 500, FullStreamBytesPerS: 5000, Joins: Summary{Count: 2000, P50: 3, P99: 40}},
		// A voter that could not be read: no voter comparison.
		{Spectators: 4000, Watching: 3000, PlayerP99: 12, Voters: usage{Procs: 2, CPUPercent: 50}, VoterStreamBytesPerS: -1,
			Relays: usage{Procs: 1, CPUPercent: 81, RSSMB: 100}, SpectatorBytesPerS: 3000 * 400},
	}
	r := newResult("spectator-influx")
	stepFigures(r, steps)
	f := r.Figures
	require.InDelta(t, 1.05, f["p99_ratio_2000"], 1e-9)
	require.InDelta(t, 1, f["p99_ratio_0"], 1e-9)
	require.InDelta(t, 1, f["voters_cpu_percent_per_1k_2000"], 1e-9)
	require.InDelta(t, 50000, f["voters_write_bytes_per_s_per_1k_2000"], 1e-9)
	require.InDelta(t, 500, f["voters_stream_bytes_per_s_per_1k_2000"], 1e-9)
	require.NotContains(t, f, "voters_stream_bytes_per_s_per_1k_4000", "not scraped")
	require.InDelta(t, 20, f["relays_cpu_percent_per_1k_2000"], 1e-9)
	require.InDelta(t, 20, f["relays_rss_mb_per_1k_2000"], 1e-9)
	require.InDelta(t, 500, f["bytes_per_s_per_spectator_2000"], 1e-9)
	require.InDelta(t, 0.1, f["spectator_to_full_stream_2000"], 1e-9)
	require.InDelta(t, 3, f["keyframe_join_p50_ms_2000"], 1e-9)
	require.InDelta(t, 40, f["keyframe_join_p99_ms_2000"], 1e-9)
	require.InDelta(t, 50, f["loadgen_cpu_percent_2000"], 1e-9)
	require.InDelta(t, 400, f["bytes_per_s_per_spectator_4000"], 1e-9, "per spectator watching")
	require.InDelta(t, 20, f["relays_cpu_percent_per_1k_4000"], 1e-9)
	require.NotContains(t, f, "voters_cpu_percent_per_1k_4000")
	require.NotContains(t, f, "spectator_to_full_stream_4000", "no full stream measured")
	require.NotContains(t, f, "voters_cpu_percent_per_1k_0", "the baseline is not compared with itself")
	require.NotContains(t, f, "bytes_per_s_per_spectator_0")

	r2 := newResult("x")
	stepFigures(r2, nil)
	require.Empty(t, r2.Figures)
	r3 := newResult("x")
	stepFigures(r3, []spectatorStep{{Spectators: 5, Watching: 5}})
	require.NotContains(t, r3.Figures, "p99_ratio_5", "no baseline P99")
}

func TestStepLinesDescribeEachStep(t *testing.T) {
	r := newResult("spectator-influx")
	r.Phases = append(r.Phases, *newResult("warm"))
	for _, st := range []spectatorStep{
		{Spectators: 0, Voters: usage{Procs: 3, CPUPercent: 60, WriteBytesPerS: 2.5e6}, VoterStreamBytesPerS: 4000},
		{Spectators: 20, Watching: 20, Relays: usage{Procs: 1, CPUPercent: 4, RSSMB: 30}, SpectatorBytesPerS: 20 * 1500, VoterStreamBytesPerS: -1,
			FullStreamBytesPerS: 800, Joins: Summary{Count: 20, P50: 2, P99: 9}, Refused: 3},
	} {
		pr := newResult("step")
		stepInto(pr, st)
		r.Phases = append(r.Phases, *pr)
	}
	lines := StepLines(r)
	require.Len(t, lines, 2)
	require.Contains(t, lines[0], "[0 spectators, 0 watching]")
	require.Contains(t, lines[0], "voters cpu 60.0% rss 0.0 MB write 2.50 MB/s streams 4.0 kB/s")
	require.NotContains(t, lines[0], "relays", "no relay process")
	require.NotContains(t, lines[0], "keyframe join")
	require.Contains(t, lines[1], "[20 spectators, 20 watching]")
	require.Contains(t, lines[1], "per spectator 1.5 kB/s (full stream 800 B/s)")
	require.Contains(t, lines[1], "keyframe join p50 2.00 p99 9.00 ms")
	require.Contains(t, lines[1], "relays cpu 4.0% rss 30.0 MB")
	require.Contains(t, lines[1], "voters not sampled")
	require.NotContains(t, lines[1], "streams", "not scraped")
	require.Contains(t, lines[1], "refused 3 times")
	require.NotContains(t, lines[0], "refused")
	require.Empty(t, StepLines(newResult("battle")))
}

// watchServer answers the watch route with frames, then holds the
// connection until the client goes.
func watchServer(t *testing.T, frames ...string) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.SubprotocolJSON}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for _, f := range frames {
			if ws.Write(r.Context(), websocket.MessageText, []byte(f)) != nil {
				return
			}
		}
		_, _, _ = ws.Read(r.Context())
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestWatchFramesTimesTheKeyframeAndCountsBytes(t *testing.T) {
	kf := `{"type":"keyframe","world":"w","seq":3,"entities":{"a":{"version":1,"fields":{"hp":{"value":` + strings.Repeat("9", 100) + `}}}}}`
	delta := `{"type":"delta","world":"w","seq":4}`
	url := watchServer(t, kf, delta)
	var n atomic.Int64
	joined := make(chan time.Duration, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- watchFrames(ctx, url, "w", &n, func(d time.Duration) { joined <- d }, func() { t.Error("refused") })
	}()
	<-joined
	require.Eventually(t, func() bool { return n.Load() == int64(len(kf)+len(delta)) }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done, "an ended context ends the watch without an error")

	short := `{"type":"delta"}`
	err := watchFrames(context.Background(), watchServer(t, short), "w", &n, func(time.Duration) { t.Error("joined on a delta") }, func() {})
	require.ErrorContains(t, err, "not a keyframe")

	err = watchFrames(context.Background(), "127.0.0.1:1", "w", &n, func(time.Duration) {}, func() {})
	require.ErrorContains(t, err, "watch w on")
	require.True(t, isKeyframe([]byte(`{"type":"keyframe"`)))
	require.False(t, isKeyframe([]byte(`{"type":"keyframes"`)))
}

// deflated is the raw DEFLATE of s, as gsd.watch.deflate.v1 sends frames.
func deflated(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	require.NoError(t, err)
	_, err = w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// deflateWatchServer answers the watch route in gsd.watch.deflate.v1 with
// frames, then holds the connection until the client goes.
func deflateWatchServer(t *testing.T, frames ...[]byte) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.SubprotocolWatchDeflate}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		if ws.Subprotocol() != wire.SubprotocolWatchDeflate {
			ws.Close(websocket.StatusPolicyViolation, "deflate only")
			return
		}
		for _, f := range frames {
			if ws.Write(r.Context(), websocket.MessageBinary, f) != nil {
				return
			}
		}
		_, _, _ = ws.Read(r.Context())
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// A spectator asks for deflated frames, recognises the keyframe inside
// the first one, and counts the bytes sent (compressed).
func TestWatchFramesReadsDeflatedFramesAndCountsTheirBytes(t *testing.T) {
	kf := deflated(t, `{"type":"keyframe","world":"w","seq":3,"entities":{"a":{"version":1,"fields":{"hp":{"value":`+strings.Repeat("9", 100)+`}}}}}`)
	delta := deflated(t, `{"type":"delta","world":"w","seq":4}`)
	url := deflateWatchServer(t, kf, delta)
	var n atomic.Int64
	joined := make(chan time.Duration, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- watchFrames(ctx, url, "w", &n, func(d time.Duration) { joined <- d }, func() { t.Error("refused") })
	}()
	<-joined
	require.Eventually(t, func() bool { return n.Load() == int64(len(kf)+len(delta)) }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	err := watchFrames(context.Background(), deflateWatchServer(t, delta), "w", &n, func(time.Duration) { t.Error("joined on a delta") }, func() {})
	require.ErrorContains(t, err, "not a keyframe")
	err = watchFrames(context.Background(), deflateWatchServer(t, []byte("not deflate")), "w", &n, func(time.Duration) { t.Error("joined on garbage") }, func() {})
	require.Error(t, err)
}

// A spectator asks for frames without versions, and joins without them
// on a server that refuses versions= (an older gsd).
func TestWatchFramesAsksForNoVersionsAndFallsBack(t *testing.T) {
	kf := `{"type":"keyframe","world":"w","seq":1}`
	inner := watchServer(t, kf)
	var asked, plain atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("versions") == "false" {
			asked.Add(1)
			http.Error(w, `{"code":"malformed"}`, http.StatusBadRequest)
			return
		}
		plain.Add(1)
		http.Redirect(w, r, inner+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(ts.Close)
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	joined := make(chan struct{})
	go func() {
		done <- watchFrames(ctx, ts.URL, "w", &n, func(time.Duration) { close(joined) }, func() { t.Error("refused") })
	}()
	select {
	case <-joined:
	case err := <-done:
		t.Fatalf("watch ended: %v", err)
	}
	cancel()
	require.NoError(t, <-done)
	require.EqualValues(t, 1, asked.Load())
	require.EqualValues(t, 1, plain.Load())

	// Refused again without versions=: an error, not a loop.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"code":"malformed"}`, http.StatusBadRequest)
	}))
	t.Cleanup(bad.Close)
	err := watchFrames(context.Background(), bad.URL, "w", &n, func(time.Duration) {}, func() {})
	require.ErrorContains(t, err, "400")
}

// A full server's 503 is counted and tried again after its Retry-After;
// another refusal is an error.
func TestWatchFramesRetriesAFullServer(t *testing.T) {
	kf := `{"type":"keyframe","world":"w","seq":1}`
	inner := watchServer(t, kf)
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":"overloaded"}`, http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, inner+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(ts.Close)
	var n atomic.Int64
	var refused atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	joined := make(chan struct{})
	go func() {
		done <- watchFrames(ctx, ts.URL, "w", &n, func(time.Duration) { close(joined) }, func() { refused.Add(1) })
	}()
	select {
	case <-joined:
	case err := <-done:
		t.Fatalf("watch ended: %v", err)
	}
	cancel()
	require.NoError(t, <-done)
	require.EqualValues(t, 1, refused.Load())

	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(forbidden.Close)
	err := watchFrames(context.Background(), forbidden.URL, "w", &n, func(time.Duration) {}, func() { t.Error("a 403 is no refusal to retry") })
	require.ErrorContains(t, err, "403")

	require.Equal(t, time.Second, retryAfter(""))
	require.Equal(t, time.Second, retryAfter("x"))
	require.Equal(t, 3*time.Second, retryAfter("3"))
	require.Equal(t, maxRetryAfter, retryAfter("3600"))
}

// spectator-influx in steps, through a relay: every step's spectators
// watch (a keyframe each), the report counts them and compares the steps.
func TestSpectatorStepsThroughARelay(t *testing.T) {
	addr := startNode(t)
	tg := &Target{Addrs: []string{addr}, Procs: []Proc{Self()}}
	var rel *relay.Relay
	relays := func(_ context.Context, upstreams []string) (RelaySet, error) {
		cfg := relay.DefaultConfig()
		cfg.Upstream = "http://" + upstreams[0]
		r, err := relay.New(cfg)
		if err != nil {
			return RelaySet{}, err
		}
		rel = r
		ts := httptest.NewServer(r.Handler())
		return RelaySet{Addrs: []string{ts.Listener.Addr().String()}, Procs: []Proc{{Name: "relay", PID: os.Getpid}},
			Stop: func() { r.Close(); ts.Close() }}, nil
	}
	r, err := SpectatorSteps(context.Background(), tg, smallLoad("st"), SpectatorStepsParams{Steps: []int{0, 4, 6},
		Ramp: 50 * time.Millisecond, Relays: relays}, Timing{Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	require.True(t, r.OK(), "%+v", r.Checks)
	require.NotNil(t, rel)
	require.Equal(t, 1, r.Params["relays"])
	require.Len(t, r.Phases, 3)
	// Players' commits are measured in every step; one 300 ms step on a
	// loaded machine may see none commit, so they are summed.
	var commits int64
	for i, n := range []int64{0, 4, 6} {
		ph := r.Phases[i]
		require.Equal(t, n, ph.Counts["spectators"])
		require.Equal(t, n, ph.Counts["spectators_watching"])
		require.EqualValues(t, 1, ph.Counts["relay_processes"])
		require.EqualValues(t, 1, ph.Counts["voter_processes"])
		commits += ph.Latency["action_commit"].Count
	}
	require.Positive(t, commits, "the players' actions committed")
	require.EqualValues(t, 4, r.Phases[1].Latency["keyframe_join"].Count)
	require.EqualValues(t, 2, r.Phases[2].Latency["keyframe_join"].Count, "the newcomers of the step")
	require.Contains(t, r.Figures, "relays_cpu_percent_per_1k_6")
	require.Contains(t, r.Figures, "voters_cpu_percent_per_1k_4")
	// The node's event stream to the relay: scraped in every step, and
	// something written over the run (one 300 ms step under load may see
	// no flush).
	var streamed float64
	for _, ph := range r.Phases {
		require.Contains(t, ph.Figures, "voters_stream_bytes_per_s")
		streamed += ph.Figures["voters_stream_bytes_per_s"]
	}
	require.Positive(t, streamed, "the node's event stream to the relay")
	require.Contains(t, r.Figures, "voters_stream_bytes_per_s_per_1k_6")
	require.Positive(t, r.Figures["bytes_per_s_per_spectator_6"])
	require.Positive(t, r.Figures["full_stream_bytes_per_s"]+r.Phases[2].Figures["full_stream_bytes_per_s"])
	require.Len(t, StepLines(r), 3)
	var names []string
	for _, p := range r.Procs {
		names = append(names, p.Name)
	}
	require.Contains(t, names, "relay", "the relay process is in the run's process list")

	_, err = SpectatorSteps(context.Background(), tg, smallLoad("st2"), SpectatorStepsParams{Steps: []int{1},
		Relays: func(context.Context, []string) (RelaySet, error) { return RelaySet{}, errors.New("no relay") }}, Timing{Duration: 100 * time.Millisecond})
	require.ErrorContains(t, err, "no relay")
	_, err = SpectatorSteps(context.Background(), tg, smallLoad("st3"), SpectatorStepsParams{}, Timing{Duration: 100 * time.Millisecond})
	require.ErrorContains(t, err, "no step")
	_, err = SpectatorSteps(context.Background(), tg, smallLoad("st4"), SpectatorStepsParams{Steps: []int{1},
		Relays: func(context.Context, []string) (RelaySet, error) { return RelaySet{Stop: func() {}}, nil }}, Timing{Duration: 100 * time.Millisecond})
	require.ErrorContains(t, err, "no node or relay")
}
