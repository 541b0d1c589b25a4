package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The play scenario against a real in-process node: results come back
// with no failures. No duration or throughput assertions.
func TestPlayBattle(t *testing.T) {
	addr := startNode(t)
	ctx := context.Background()
	p := smallLoad("play1")
	p.Players, p.Rate = 4, 200
	// A short run on a loaded machine may measure no propagation yet (the
	// players' first events still in flight when it ends): run it again,
	// a few times at most, rather than asserting a duration.
	var r *Result
	for range 5 {
		var err error
		r, err = PlayBattle(ctx, &Target{Addrs: []string{addr}}, p, PlayParams{}, Timing{Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond})
		require.NoError(t, err)
		if r.Latency["propagation"].Count > 0 {
			break
		}
	}
	require.Equal(t, "play", r.Scenario)
	require.Equal(t, "client (WebSocket play)", r.Level)
	require.Positive(t, r.Counts["sent"])
	require.Positive(t, r.Counts["applied"])
	require.Zero(t, r.Counts["failed"], "%v", r.Errors)
	require.Positive(t, r.Latency["action_commit"].Count)
	require.Positive(t, r.Latency["propagation"].Count)
	require.Positive(t, r.Counts["delivered_events"])
	require.Contains(t, r.Figures, "stage_write_p99_ms", "the nodes' own split of the way")
	require.Contains(t, r.Figures, "loadgen_cpu_us_per_delivery") // /proc counts in 10 ms ticks: it may be 0 in a short run
	require.True(t, r.OK(), "%+v", r.Checks)

	require.Empty(t, r.Phases, "one phase without a bulk rate")

	_, err := PlayBattle(ctx, &Target{Addrs: []string{addr}}, p, PlayParams{BulkRate: -1}, Timing{Duration: time.Millisecond})
	require.Error(t, err)
	p.Players = MaxPlayPlayers + 1
	_, err = PlayBattle(ctx, &Target{Addrs: []string{addr}}, p, PlayParams{}, Timing{Duration: time.Millisecond})
	require.Error(t, err)
}

// With a bulk rate, a second phase adds bulk moves, which reach the
// players coalesced; both phases' propagation is reported.
func TestPlayBattleWithBulkComparesPropagation(t *testing.T) {
	addr := startNode(t)
	p := smallLoad("play2")
	p.Players, p.Rate = 4, 100
	r, err := PlayBattle(context.Background(), &Target{Addrs: []string{addr}}, p, PlayParams{BulkRate: 300, Encoding: "msgpack"},
		Timing{Duration: 400 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, r.Phases, 2)
	require.Equal(t, "without bulk", r.Phases[0].Scenario)
	require.Positive(t, r.Counts["bulk_sent"])
	require.Positive(t, r.Counts["delivered_deltas"], "bulk moves arrive as deltas")
	require.Contains(t, r.Figures, "propagation_p99_without_bulk_ms")
	require.Contains(t, r.Figures, "propagation_p99_with_bulk_ms")
	require.Equal(t, "msgpack", r.Params["encoding"])
	require.True(t, r.OK(), "%+v", r.Checks)
}

func TestMemoryPerConnectionFromProcAndMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# HELP go_memstats_heap_inuse_bytes x\ngo_memstats_heap_inuse_bytes_total 1\ngo_memstats_heap_inuse_bytes 2.5e+06")
	}))
	defer srv.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "go_memstats_heap_inuse_bytes lots")
	}))
	defer bad.Close()
	tg := &Target{Procs: []Proc{Self(), {Name: "gone", PID: func() int { return 0 }}}}
	m := tg.memory(context.Background(), []string{srv.URL, strings.TrimPrefix(srv.URL, "http://"), bad.URL, "http://127.0.0.1:1"})
	require.Positive(t, m.rssKB)
	require.Equal(t, 5e6, m.heapBytes)
	_, ok := scrapeMetric(context.Background(), http.DefaultClient, "http://bad host", "x")
	require.False(t, ok)

	r := newResult("play")
	perConn(r, memSample{rssKB: 1000, heapBytes: 1 << 20}, memSample{rssKB: 3048, heapBytes: 3 << 20}, 2)
	require.Equal(t, 1024.0, r.Figures["rss_kb_per_conn"])
	require.Equal(t, 1024.0, r.Figures["heap_kb_per_conn"])
	require.Equal(t, 3048.0/1024, r.Figures["gsd_rss_mb_connected"])
	empty := newResult("play")
	perConn(empty, memSample{}, memSample{}, 2)
	perConn(empty, memSample{}, memSample{rssKB: 1}, 0)
	require.Empty(t, empty.Figures)
}
