package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/loadgen"
	"github.com/stretchr/testify/require"
)

// gsdctl bench spectator-influx --relay-procs runs the relays as
// processes of their own (this binary, as gsdctl) and reports each step's
// spectators, the relay process and the joins to a keyframe.
func TestBenchSpectatorStepsWithRelayProcesses(t *testing.T) {
	addr := startNode(t)
	t.Setenv(asGsdctl, "1")
	dir := t.TempDir()
	out, prof := filepath.Join(dir, "r.json"), filepath.Join(dir, "relay.pprof")
	stdout := mustRun(t, "--addr", addr, "bench", "--quiet", "--duration", "300ms", "--warmup", "50ms",
		"--players", "10", "--items", "3", "--rate", "200", "--batch", "4", "--conns", "2", "--observers", "1",
		"--spectator-steps", "0,20", "--ramp", "100ms", "--relay-procs", "1", "--relay-arg=--cpuprofile="+prof,
		"--out", out, "spectator-influx")
	require.Contains(t, stdout, "[20 spectators, 20 watching]")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var rep loadgen.Report
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Len(t, rep.Results, 1)
	r := rep.Results[0]
	require.True(t, r.OK(), "%+v", r.Checks)
	require.EqualValues(t, 1, r.Params["relay_processes"])
	require.Len(t, r.Phases, 2)
	require.EqualValues(t, 20, r.Phases[1].Counts["spectators_watching"])
	require.EqualValues(t, 1, r.Phases[1].Counts["relay_processes"], "the relay process was sampled")
	require.EqualValues(t, 20, r.Phases[1].Latency["keyframe_join"].Count)
	require.Positive(t, r.Phases[1].Figures["relays_rss_mb"])
	require.Contains(t, r.Figures, "relays_cpu_percent_per_1k_20")
	require.Positive(t, r.Figures["bytes_per_s_per_spectator_20"])
	fi, err := os.Stat(prof)
	require.NoError(t, err, "--relay-arg reached the relay process")
	require.Positive(t, fi.Size(), "the relay wrote its CPU profile when stopped")
}

// --relays with --spectator-steps keeps the relays inside gsdctl: no
// relay process is sampled, yet the spectators watch through them.
func TestBenchSpectatorStepsWithRelaysInside(t *testing.T) {
	addr := startNode(t)
	out := filepath.Join(t.TempDir(), "r.json")
	mustRun(t, "--addr", addr, "bench", "--quiet", "--duration", "200ms", "--warmup", "0s",
		"--players", "10", "--items", "3", "--rate", "200", "--batch", "4", "--conns", "2", "--observers", "1",
		"--spectator-steps", "3", "--ramp", "50ms", "--relays", "1", "--out", out, "spectator-influx")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var rep loadgen.Report
	require.NoError(t, json.Unmarshal(b, &rep))
	r := rep.Results[0]
	require.True(t, r.OK(), "%+v", r.Checks)
	require.EqualValues(t, 1, r.Params["relays"])
	require.EqualValues(t, 0, r.Params["relay_processes"])
	require.EqualValues(t, 3, r.Phases[0].Counts["spectators_watching"])
}

func TestBenchSpectatorStepsRefusesBadFlags(t *testing.T) {
	addr := startNode(t)
	for _, args := range [][]string{
		{"--spectator-steps", "5,1"},
		{"--spectator-steps", "x"},
		{"--relay-procs", "1", "--relays", "1"},
	} {
		code, _, errOut := ctl(t, "", append(append([]string{"--addr", addr, "bench", "--quiet", "--duration", "100ms"}, args...), "spectator-influx")...)
		require.Equal(t, 1, code, "%v: %s", args, errOut)
		require.Contains(t, errOut, "Run 'gsdctl --help'", "%v", args)
	}
	_, err := relayProcs("/nonexistent/gsdctl", 1, 1)(context.Background(), []string{addr})
	require.Error(t, err)
	_, err = relayProcs("/nonexistent/gsdctl", 1, 1)(context.Background(), nil)
	require.ErrorContains(t, err, "no node")
}
