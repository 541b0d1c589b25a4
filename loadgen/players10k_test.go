package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/stretchr/testify/require"
)

// players-10k against a real in-process node with an interest grid: two
// small steps run with churn, every player's stream stays without a gap,
// and the nodes' sent events are at least what the players received. No
// duration or throughput assertions (the goal is generous).
func TestPlayers10kStepsWithInterestAndChurn(t *testing.T) {
	pp := DefaultPlayers10kParams()
	pp.Steps = []int{8, 16}
	pp.CriticalPerPlayer, pp.MovesPerPlayer, pp.JoinRate = 5, 5, 200
	pp.ChurnPerMinute = 30 // a few drops within the short run
	pp.Visible = 4
	pp.Goal = time.Minute
	pp.MeasureEvery = 1
	addr := testnode.StartWith(t, func(c *api.Config) {
		c.Play.Interest = api.InterestConfig{Cell: pp.Cell, X: "x", Y: "y", Radius: pp.Radius}
	})
	p := smallLoad("p10k")
	r, err := Players10k(context.Background(), &Target{Addrs: []string{addr}}, p, pp, Timing{Warmup: 100 * time.Millisecond, Duration: 600 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, "players-10k", r.Scenario)
	require.True(t, r.OK(), "%+v", r.Checks)
	require.Equal(t, 16.0, r.Figures["largest_n_held"])
	require.Len(t, r.Phases, 2)
	for _, ph := range r.Phases {
		require.True(t, ph.OK(), "%s: %+v", ph.Scenario, ph.Checks)
		require.Positive(t, ph.Latency["propagation"].Count, ph.Scenario)
		require.Positive(t, ph.Figures["critical_per_s"], ph.Scenario)
		require.Positive(t, ph.Figures["messages_per_s"], ph.Scenario)
		require.Contains(t, ph.Figures, "loadgen_cpu_us_per_delivery", ph.Scenario) // /proc counts in 10 ms ticks: it may be 0 in a short run
		require.NotContains(t, ph.Figures, "gsd_cpu_us_per_delivery", "no gsd process is sampled in-process")
		require.Zero(t, ph.Counts["stream_errors"], ph.Scenario)
		for _, stage := range []string{"act", "fanout", "write"} {
			require.Contains(t, ph.Figures, "stage_"+stage+"_p99_ms", "the nodes' own split of the way")
		}
		require.GreaterOrEqual(t, ph.Counts["nodes_sent_since_start"], ph.Counts["players_received_since_start"], ph.Scenario)
	}
	require.Positive(t, r.Phases[1].Figures["churned_per_min"])
}

// A step that misses the goal ends the run: later steps do not run.
func TestPlayers10kStopsAtTheFirstStepThatMissesTheGoal(t *testing.T) {
	pp := DefaultPlayers10kParams()
	pp.Steps = []int{4, 8}
	pp.CriticalPerPlayer, pp.MovesPerPlayer, pp.JoinRate, pp.ChurnPerMinute = 5, 0, 200, 0
	pp.Goal = time.Nanosecond // no step can hold it
	addr := testnode.StartWith(t, func(c *api.Config) {
		c.Play.Interest = api.InterestConfig{Cell: pp.Cell, X: "x", Y: "y", Radius: pp.Radius}
	})
	r, err := Players10k(context.Background(), &Target{Addrs: []string{addr}}, smallLoad("p10k2"), pp, Timing{Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, r.Phases, 1)
	require.Zero(t, r.Figures["largest_n_held"])
	require.False(t, r.OK())
}

func TestPlayers10kParamsAreChecked(t *testing.T) {
	for _, mut := range []func(*Players10kParams){
		func(p *Players10kParams) { p.Steps = nil },
		func(p *Players10kParams) { p.Steps = []int{10, 5} },
		func(p *Players10kParams) { p.Steps = []int{MaxPlayPlayers + 1} },
		func(p *Players10kParams) { p.CriticalPerPlayer = 0 },
		func(p *Players10kParams) { p.JoinRate = 0 },
		func(p *Players10kParams) { p.Cell = 0 },
		func(p *Players10kParams) { p.Visible = 0 },
		func(p *Players10kParams) { p.MeasureEvery = 0 },
	} {
		pp := DefaultPlayers10kParams()
		mut(&pp)
		_, err := Players10k(context.Background(), &Target{}, smallLoad("x"), pp, Timing{Duration: time.Millisecond})
		require.Error(t, err)
	}
	pp := DefaultPlayers10kParams()
	// The map grows with N so that the same number stays in view.
	require.InDelta(t, 2*pp.side(1000), pp.side(4000), 1e-9)
}
