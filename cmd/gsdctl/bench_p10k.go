package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gsd-dev/gsd/loadgen"
	"github.com/spf13/pflag"
)

// The players-10k scenario's flags and the interest grid it needs on the
// local nodes. It is not part of the default suite (it runs for minutes):
// name it, on its own, as `gsdctl bench players-10k`.

const players10k = "players-10k"

// extraScenarios run only when named.
var extraScenarios = []string{players10k}

func addP10kFlags(f *pflag.FlagSet, o *benchOptions) {
	o.p10k = loadgen.DefaultPlayers10kParams()
	f.IntSliceVar(&o.p10k.Steps, "steps", o.p10k.Steps, "players-10k: players per step, ascending (it stops at the first step that misses the goal)")
	f.Float64Var(&o.p10k.CriticalPerPlayer, "critical-per-player", o.p10k.CriticalPerPlayer, "players-10k: critical actions per player per second")
	f.Float64Var(&o.p10k.MovesPerPlayer, "moves-per-player", o.p10k.MovesPerPlayer, "players-10k: bulk moves per player per second")
	f.Float64Var(&o.p10k.JoinRate, "join-rate", o.p10k.JoinRate, "players-10k: players joining per second")
	f.Float64Var(&o.p10k.ChurnPerMinute, "churn-per-min", o.p10k.ChurnPerMinute, "players-10k: share of the players whose connection is cut (and resumes) per minute")
	f.Float64Var(&o.p10k.Cell, "interest-cell", o.p10k.Cell, "players-10k: the interest grid cell; the local nodes get --play-interest-cell with it")
	f.IntVar(&o.p10k.Visible, "visible", o.p10k.Visible, "players-10k: players each one sees (sets the map size per step)")
	f.DurationVar(&o.p10k.Goal, "goal", o.p10k.Goal, "players-10k: critical propagation P99 a step must hold")
	f.IntVar(&o.p10k.MeasureEvery, "measure-every", o.p10k.MeasureEvery, "players-10k: one player in N records propagation (the load generator's CPU)")
}

// knownScenario reports whether s is a scenario bench runs.
func knownScenario(s string) bool {
	return slices.Contains(benchScenarios, s) || slices.Contains(extraScenarios, s)
}

// scenarioNames lists every scenario for an error message.
func scenarioNames() string {
	return strings.Join(append(slices.Clone(benchScenarios), extraScenarios...), ", ")
}

// p10kNodeArgs are the local nodes' interest flags when players-10k runs
// (none if the caller set an interest cell with --gsd-arg).
func p10kNodeArgs(o *benchOptions, scenarios []string) []string {
	if !slices.Contains(scenarios, players10k) {
		return nil
	}
	for _, a := range o.gsdArgs {
		if strings.HasPrefix(a, "--play-interest-cell") {
			return nil
		}
	}
	return []string{fmt.Sprintf("--play-interest-cell=%g", o.p10k.Cell), fmt.Sprintf("--play-interest-radius=%d", o.p10k.Radius)}
}

// writeStepTable writes players-10k's steps as a table: load, the client's
// propagation, the server's stages, CPU per message on each side, memory.
func writeStepTable(w io.Writer, r *loadgen.Result) {
	if r.Scenario != players10k || len(r.Phases) == 0 {
		return
	}
	fmt.Fprintln(w, "| players | critical/s | moves/s | messages/s | propagation P50 / P99 ms | server act / fanout / write P99 ms | gsd µs/delivery | loadgen µs/delivery | RSS KB/conn | overlaps | gaps | held |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, ph := range r.Phases {
		f, prop := ph.Figures, ph.Latency["propagation"]
		held := "yes"
		if !ph.OK() {
			held = "**no**"
		}
		fmt.Fprintf(w, "| %v | %.0f | %.0f | %.0f | %.1f / %.1f | %.1f / %.1f / %.1f | %.1f | %.1f | %.0f | %d | %d | %s |\n",
			ph.Params["players"], f["critical_per_s"], f["moves_per_s"], f["messages_per_s"], prop.P50, prop.P99,
			f["stage_act_p99_ms"], f["stage_fanout_p99_ms"], f["stage_write_p99_ms"],
			f["gsd_cpu_us_per_delivery"], f["loadgen_cpu_us_per_delivery"], f["rss_kb_per_conn"],
			ph.Counts["overlaps_dropped"], ph.Counts["stream_errors"], held)
	}
	fmt.Fprintln(w)
}
