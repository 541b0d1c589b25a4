package main

import (
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/loadgen"
	"github.com/stretchr/testify/require"
)

func TestPlayers10kGivesTheLocalNodesAnInterestGrid(t *testing.T) {
	o := &benchOptions{p10k: loadgen.DefaultPlayers10kParams()}
	require.Nil(t, p10kNodeArgs(o, []string{"play"}), "other scenarios keep the nodes' defaults")
	require.Equal(t, []string{"--play-interest-cell=100", "--play-interest-radius=1"}, p10kNodeArgs(o, []string{players10k}))
	o.gsdArgs = []string{"--play-interest-cell=40"}
	require.Nil(t, p10kNodeArgs(o, []string{players10k}), "the caller's own grid wins")

	require.True(t, knownScenario(players10k))
	require.True(t, knownScenario("battle"))
	require.False(t, knownScenario("nope"))
	require.Contains(t, scenarioNames(), players10k)
	require.NotContains(t, benchScenarios, players10k, "not in the default suite: it runs for minutes")
}

func TestPlayers10kReportHasARowPerStep(t *testing.T) {
	held := loadgen.Result{Params: map[string]any{"players": 1000}, Figures: map[string]float64{"messages_per_s": 27000, "gsd_cpu_us_per_delivery": 12.5, "stage_write_p99_ms": 3},
		Latency: map[string]loadgen.Summary{"propagation": {P50: 9, P99: 31}}, Checks: []loadgen.Check{{Name: "p99", OK: true}}}
	missed := loadgen.Result{Params: map[string]any{"players": 2000}, Figures: map[string]float64{}, Checks: []loadgen.Check{{Name: "p99", OK: false}}}
	var b strings.Builder
	writeStepTable(&b, &loadgen.Result{Scenario: players10k, Phases: []loadgen.Result{held, missed}})
	out := b.String()
	require.Contains(t, out, "| 1000 | 0 | 0 | 27000 | 9.0 / 31.0 | 0.0 / 0.0 / 3.0 | 12.5 |")
	require.Contains(t, out, "| 2000 |")
	require.Contains(t, out, "**no**")
	b.Reset()
	writeStepTable(&b, &loadgen.Result{Scenario: "play", Phases: []loadgen.Result{held}})
	require.Empty(t, b.String(), "other scenarios have no step table")
}
