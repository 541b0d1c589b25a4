package loadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The scenarios against a real in-process node. They check outcomes and
// the shape of the results, never durations or rates.

func TestScenarios(t *testing.T) {
	addr := startNode(t)
	var log bytes.Buffer
	var shown atomic.Int64
	tg := &Target{Addrs: []string{addr}, Log: &log,
		Procs: []Proc{{Name: "self-again", PID: func() int { return os.Getpid() }}, {Name: "gone", PID: func() int { return 0 }}},
		Progress: func(ctx context.Context, phase string, total time.Duration, status func() string) {
			_ = status()
			shown.Add(1)
			<-ctx.Done()
		}}
	ctx := context.Background()

	t.Run("battle", func(t *testing.T) {
		r, err := Battle(ctx, tg, smallLoad("b1"), short)
		require.NoError(t, err)
		require.Equal(t, "battle", r.Scenario)
		require.Positive(t, r.Counts["sent"])
		require.Positive(t, r.Counts["applied"])
		require.Positive(t, r.Latency["action_commit"].Count)
		require.Positive(t, r.Latency["fanout"].Count)
		require.Positive(t, r.Latency["propagation"].Count)
		require.True(t, r.OK(), "%+v", r.Checks)
		require.NotEmpty(t, r.Procs)
	})
	t.Run("single actions", func(t *testing.T) {
		p := smallLoad("b2")
		p.Batch = 1
		r, err := Battle(ctx, tg, p, Timing{Duration: 300 * time.Millisecond})
		require.NoError(t, err)
		require.Equal(t, "client (HTTP single actions)", r.Level)
		require.Positive(t, r.Counts["applied"])
	})
	t.Run("conflict-storm", func(t *testing.T) {
		for _, batch := range []int{1, 7} {
			r, err := ConflictStorm(ctx, tg, StormParams{World: "storm" + string(rune('a'+batch)), Players: 15, Rounds: 3, Batch: batch})
			require.NoError(t, err)
			require.True(t, r.OK(), "%+v", r.Checks)
			require.EqualValues(t, 3, r.Counts["rounds_with_1_winners"])
			require.EqualValues(t, 3, r.Counts["applied"])
			require.EqualValues(t, 42, r.Counts["conflicts"])
		}
		_, err := ConflictStorm(ctx, tg, StormParams{})
		require.Error(t, err)
	})
	t.Run("spectator-influx", func(t *testing.T) {
		r, err := SpectatorInflux(ctx, tg, smallLoad("s1"), SpectatorParams{Spectators: 3, Ramp: 100 * time.Millisecond, OnFollowers: true, DecodeEvery: 2, Linger: 10 * time.Millisecond, Nodes: 1}, short)
		require.NoError(t, err)
		require.Len(t, r.Phases, 3)
		require.Positive(t, r.Latency["spectator"].Count)
		require.Contains(t, r.Figures, "p99_ratio")
		require.EqualValues(t, 3, r.Figures["spectators_connected"])
		require.True(t, r.OK(), "%+v", r.Checks)
	})
	t.Run("churn", func(t *testing.T) {
		r, err := Churn(ctx, tg, smallLoad("c1"), ChurnParams{Clients: 2, Dwell: 60 * time.Millisecond, Offline: 20 * time.Millisecond}, short)
		require.NoError(t, err)
		require.Positive(t, r.Counts["reconnects"])
		require.Zero(t, r.Counts["gaps"])
		require.Zero(t, r.Counts["duplicates_in_streams"])
		require.True(t, r.OK(), "%+v", r.Checks)
	})
	t.Run("failover", func(t *testing.T) {
		_, err := Failover(ctx, tg, smallLoad("f0"), FailoverParams{}, short)
		require.Error(t, err)
		var restarted atomic.Bool
		ft := *tg
		ft.KillLeader = func(context.Context) (string, error) { return "n1", nil } // nothing to kill in-process
		ft.Restart = func(context.Context, string) error { restarted.Store(true); return nil }
		r, err := Failover(ctx, &ft, smallLoad("f1"), FailoverParams{KillAfter: 100 * time.Millisecond, Down: 50 * time.Millisecond}, short)
		require.NoError(t, err)
		require.True(t, restarted.Load())
		require.True(t, r.OK(), "%+v", r.Checks)
		require.Positive(t, r.Counts["acks_checked"])
		require.Zero(t, r.Counts["acks_lost"])
		require.Contains(t, r.Figures, "recovery_ms")
	})
	require.Positive(t, shown.Load())
	require.Contains(t, log.String(), "battle:")

	var out bytes.Buffer
	r1, err := ConflictStorm(ctx, &Target{Addrs: []string{addr}}, StormParams{World: "st", Players: 3, Rounds: 1, Batch: 2})
	require.NoError(t, err)
	r1.Checks = append(r1.Checks, Check{Name: "x", OK: false, Detail: "d"})
	r1.Notes = []string{"a note"}
	r1.Phases = []Result{{Scenario: "ph", Latency: map[string]Summary{"action_commit": {Count: 1}}}}
	WriteTable(&out, []*Result{r1, {Scenario: "empty", Figures: map[string]float64{"p99_ratio": 1}}})
	require.Contains(t, out.String(), "FAILED")
	require.Contains(t, out.String(), "a note")
	require.NotEmpty(t, SeriesOf(r1))
}

func TestVerifyAcksFindsMissingAndDifferentEvents(t *testing.T) {
	addr := startNode(t)
	ctx := context.Background()
	require.NoError(t, createWorld(ctx, []string{addr}, "v"))
	require.NoError(t, createWorld(ctx, []string{addr}, "v")) // exists: fine
	c := client.New([]string{addr})
	defer c.Close()
	var acks []ack
	for i := 1; i <= 3; i++ {
		ev, err := c.Act(ctx, "v", client.ActionRequest{Player: "a", Seq: uint64(i), Ops: smallOps()})
		require.NoError(t, err)
		acks = append(acks, ack{seq: ev.Seq, player: "a", clientSeq: uint64(i)})
	}
	lost, checked, err := verifyAcks(ctx, []string{addr}, "v", append([]ack(nil), acks...))
	require.NoError(t, err)
	require.Equal(t, 0, lost)
	require.Equal(t, 3, checked)
	acks[1].player = "b"
	lost, _, err = verifyAcks(ctx, []string{addr}, "v", append([]ack(nil), acks...))
	require.NoError(t, err)
	require.Equal(t, 1, lost)
	lost, checked, err = verifyAcks(ctx, []string{addr}, "v", nil)
	require.NoError(t, err)
	require.Zero(t, lost+checked)
	_, _, err = verifyAcks(ctx, []string{addr}, "nope", []ack{{seq: 1}})
	require.Error(t, err)

	// rawFollow reports server errors and a bad status.
	hc := (&ByteCounter{}).HTTPClient(1)
	defer hc.CloseIdleConnections()
	c2 := func(string) *http.Client { return hc }
	err = rawFollow(ctx, c2(addr), addr, "nope", 1, func(uint64, int64) {})
	require.ErrorContains(t, err, "404")
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	n := 0
	require.NoError(t, rawFollow(cctx, c2(addr), "http://"+addr, "v", 1, func(uint64, int64) { n++ }))
	require.Equal(t, 3, n)
	require.Error(t, rawFollow(ctx, c2(addr), "127.0.0.1:1", "v", 1, func(uint64, int64) {}))

	// waitWorld gives up on a world that never appears.
	wctx, wcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer wcancel()
	require.Error(t, waitWorld(wctx, []string{addr}, "never"))
}

func smallOps() []wire.Op { return []wire.Op{client.Incr("e", "n", 1)} }

func TestSetupAndBots(t *testing.T) {
	addr := startNode(t)
	c := client.New([]string{addr})
	defer c.Close()
	ctx := context.Background()
	cfg := DefaultBattleConfig()
	cfg.Players, cfg.Items, cfg.Think = 6, 2, time.Millisecond
	require.NoError(t, Setup(ctx, c, cfg))
	require.NoError(t, Setup(ctx, c, cfg))
	st := &Stats{}
	bctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	require.NoError(t, RunBattle(bctx, c, cfg, st))
	require.Positive(t, st.Sent.Load())
	require.NotEmpty(t, st.Latencies())
	require.Error(t, RunBattle(ctx, c, BattleConfig{}, st))
	bad := client.New([]string{"127.0.0.1:1"}, client.WithMaxAttempts(1))
	defer bad.Close()
	require.Error(t, Setup(ctx, bad, cfg))
	require.True(t, strings.HasPrefix(cfg.World, "battle"))
}

func TestCountStreamCountsLinesAndEndsWithTheStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.EscapedPath() != "/v1/worlds/w%201/events" || r.URL.Query().Get("linger") != "50ms" {
			http.Error(w, "bad path "+r.URL.Path, http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, "{\"seq\":1}\n{\"seq\":2}\n")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "{\"seq\":3}\n")
	}))
	defer srv.Close()
	var n atomic.Int64
	err := countStream(context.Background(), srv.Client(), strings.TrimPrefix(srv.URL, "http://"), "w 1", 50*time.Millisecond, &n)
	require.ErrorIs(t, err, io.EOF)
	require.EqualValues(t, 3, n.Load())

	err = countStream(context.Background(), srv.Client(), srv.URL, "other", 0, &n)
	require.ErrorContains(t, err, "404")
}
