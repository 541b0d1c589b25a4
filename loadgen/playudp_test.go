package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/stretchr/testify/require"
)

// Bulk moves over the UDP lane: the node reads and applies them, none is
// taken for forged or replayed, and the result counts them. No duration
// or throughput assertions.
func TestPlayBattleBulkOverUDP(t *testing.T) {
	addr := testnode.StartUDP(t)
	p := smallLoad("playudp1")
	p.Players, p.Rate = 4, 100
	r, err := PlayBattle(context.Background(), &Target{Addrs: []string{addr}}, p, PlayParams{BulkRate: 300, BulkOver: BulkOverUDP},
		Timing{Duration: 400 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, "play-udp", r.Scenario)
	require.Equal(t, "client (WebSocket play, bulk over UDP)", r.Level)
	require.Equal(t, "udp", r.Params["bulk_over"])
	require.True(t, r.OK(), "%+v", r.Checks)
	require.Len(t, r.Phases, 2)

	require.Positive(t, r.Counts["udp_packets_sent"])
	require.Equal(t, r.Counts["udp_packets_sent"], r.Counts["bulk_sent"])
	require.Positive(t, r.Counts["udp_packets_accepted"])
	require.Positive(t, r.Counts["udp_actions_applied"], "UDP moves became applied actions")
	require.Zero(t, r.Counts["udp_packets_forged"])
	require.Zero(t, r.Counts["udp_packets_replayed"])
	require.Zero(t, r.Counts["udp_packets_malformed"])
	require.LessOrEqual(t, r.Counts["udp_packets_accepted"], r.Counts["udp_packets_received"])
	require.Contains(t, r.Figures, "udp_accepted_ratio")
	require.Contains(t, r.Figures, "bulk_offered_per_s")
	require.Contains(t, r.Figures, "propagation_p99_with_bulk_ms")
	require.Contains(t, r.Figures, "action_p99_with_bulk_ms")
	require.Positive(t, r.Counts["delivered_deltas"], "UDP moves reach the players as deltas")
	// The players' WebSocket actions and UDP packets share one seq space:
	// no action was refused for a reused seq.
	require.Zero(t, r.Counts["udp_actions_seq_reused"])
	require.Zero(t, r.Counts["failed"], "%v", r.Errors)

	var out bytes.Buffer
	WriteTable(&out, []*Result{r})
	require.Contains(t, out.String(), "udp_packets_sent=")
	require.Contains(t, out.String(), "play-udp")
}

// Bulk over UDP against a node without the lane is a clear error, and so
// is an unknown transport; the default is the WebSocket.
func TestPlayBattleBulkOverUDPNeedsTheLane(t *testing.T) {
	addr := startNode(t)
	p := smallLoad("playudp2")
	p.Players, p.Rate = 2, 50
	_, err := PlayBattle(context.Background(), &Target{Addrs: []string{addr}}, p, PlayParams{BulkRate: 10, BulkOver: BulkOverUDP},
		Timing{Duration: 100 * time.Millisecond})
	require.ErrorContains(t, err, "--udp-addr")

	_, err = PlayBattle(context.Background(), &Target{Addrs: []string{addr}}, p, PlayParams{BulkOver: "tcp"}, Timing{Duration: time.Millisecond})
	require.ErrorContains(t, err, `not "tcp"`)

	over, err := PlayParams{}.bulkOver()
	require.NoError(t, err)
	require.Equal(t, BulkOverWS, over)
}

func TestScrapeUDPCountersByResult(t *testing.T) {
	page := "# HELP gsd_udp_packets_total x\n# TYPE gsd_udp_packets_total counter\n" +
		"gsd_udp_packets_total{result=\"accepted\"} 7\ngsd_udp_packets_total{result=\"stale\"} 2\n" +
		"gsd_udp_actions_total{result=\"applied\"} 6\ngsd_udp_keys 3\nother_total{result=\"accepted\"} 100\n" +
		"gsd_udp_packets_total{node=\"x\"} 50\ngsd_udp_packets_total{result=\"x\"\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, page) }))
	defer srv.Close()
	ctx := context.Background()
	c, err := scrapeUDP(ctx, []string{srv.URL, srv.Listener.Addr().String()})
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"accepted": 14, "stale": 4}, c.packets)
	require.Equal(t, map[string]float64{"applied": 12}, c.actions)
	require.Equal(t, 18.0, c.received())

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "gsd_udp_packets_total{result=\"accepted\"} lots\n")
	}))
	defer bad.Close()
	_, err = scrapeUDP(ctx, []string{bad.URL})
	require.ErrorContains(t, err, "gsd_udp_packets_total")
	gone := httptest.NewServer(http.NotFoundHandler())
	defer gone.Close()
	_, err = scrapeUDP(ctx, []string{gone.URL})
	require.ErrorContains(t, err, "404")
	_, err = scrapeUDP(ctx, []string{"http://bad host"})
	require.Error(t, err)
	_, err = scrapeUDP(ctx, []string{"127.0.0.1:1"})
	require.Error(t, err)
	_, err = settleUDP(ctx, []string{"127.0.0.1:1"})
	require.Error(t, err)

	// Counters that keep moving: settle gives up after udpSettle and
	// returns the last counts.
	var n atomic.Int64
	moving := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "gsd_udp_packets_total{result=\"accepted\"} %d\n", n.Add(1))
	}))
	defer moving.Close()
	c, err = settleUDP(ctx, []string{moving.URL})
	require.NoError(t, err)
	require.Greater(t, c.packets["accepted"], 2.0)
}

func TestUDPIntoCountsWhatTheNodesDid(t *testing.T) {
	r := newResult("play-udp")
	before := udpCounts{packets: map[string]float64{"accepted": 10, "stale": 1}, actions: map[string]float64{"applied": 9}}
	after := udpCounts{packets: map[string]float64{"accepted": 100, "stale": 3, "unknown_key": 2}, actions: map[string]float64{"applied": 80, "outcome_unknown": 1}}
	udpInto(r, 100, 1, 10, before, after)
	require.Equal(t, int64(90), r.Counts["udp_packets_accepted"])
	require.Equal(t, int64(2), r.Counts["udp_packets_stale"])
	require.Equal(t, int64(2), r.Counts["udp_packets_unknown_key"])
	require.Equal(t, int64(94), r.Counts["udp_packets_received"])
	require.Equal(t, int64(6), r.Counts["udp_packets_lost"])
	require.Equal(t, int64(71), r.Counts["udp_actions_applied"])
	require.Equal(t, int64(1), r.Counts["udp_actions_outcome_unknown"])
	require.Equal(t, int64(1), r.Counts["udp_send_errors"])
	require.Equal(t, 10.0, r.Figures["udp_packets_sent_per_s"])
	require.Equal(t, 7.1, r.Figures["udp_actions_applied_per_s"])
	require.Equal(t, 0.9, r.Figures["udp_accepted_ratio"])
	require.Len(t, r.Notes, 1)

	// More read than sent (packets of an earlier run): lost is 0, not negative.
	empty := newResult("play-udp")
	udpInto(empty, 0, 0, 0, udpCounts{packets: map[string]float64{}}, after)
	require.Zero(t, empty.Counts["udp_packets_lost"])
	require.NotContains(t, empty.Figures, "udp_accepted_ratio")
	require.NotContains(t, empty.Figures, "udp_packets_sent_per_s")
}

// A packet that cannot leave (the sender is closed) is counted as failed,
// not as sent.
func TestUDPMoveCountsASendThatFailed(t *testing.T) {
	p := smallLoad("udpmove")
	p.Players = 1
	l := newLoad(p, []string{"127.0.0.1:1"})
	defer l.c.Close()
	in, err := client.NewUDPInput(client.UDPInfo{Addr: "127.0.0.1:9", KeyID: "AQIDBAUGBwg=",
		Key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, client.UDPOptions{})
	require.NoError(t, err)
	pp := &playPlayer{udp: in}
	l.udpMove(pp, 0)
	require.Equal(t, int64(1), l.bulkSent.Load())
	require.NoError(t, in.Close())
	l.udpMove(pp, 0)
	require.Equal(t, int64(1), l.bulkSent.Load())
	require.Equal(t, int64(1), l.bulkFailed.Load())
}
