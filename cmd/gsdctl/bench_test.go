package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A tiny smoke run of every scenario against an in-process node, then the
// report. It checks that the command works and writes its files, never
// durations or rates.
func TestBenchSmoke(t *testing.T) {
	addr := startNode(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	stdout := mustRun(t, "--addr", addr, "bench", "--duration", "300ms", "--warmup", "50ms",
		"--players", "10", "--items", "3", "--rate", "200", "--batch", "4", "--conns", "4", "--observers", "1",
		"--storm-players", "6", "--rounds", "2", "--storm-batch", "3", "--spectators", "2", "--ramp", "50ms",
		"--churners", "2", "--dwell", "50ms", "--offline", "10ms", "--bulk-rate", "50", "--play-encoding", "msgpack", "--out", out,
		"--spectator-nodes", "1", "--cpuprofile", filepath.Join(dir, "lg.pprof"))
	requireContains(t, stdout, "battle", "conflict-storm", "spectator-influx", "churn",
		"skipped: failover", "wrote "+out, "r-battle.svg")
	for _, s := range []string{"battle", "conflict-storm", "spectator-influx", "churn"} {
		_, err := os.Stat(filepath.Join(dir, "r-"+s+".svg"))
		require.NoError(t, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "lg.pprof"))
	require.NoError(t, err)
	require.Positive(t, fi.Size(), "--cpuprofile wrote the load generator's profile")
	code, _, errOut := ctl(t, "", "--addr", addr, "bench", "--cpuprofile", filepath.Join(dir, "no", "such", "x.pprof"), "battle")
	require.NotZero(t, code)
	require.Contains(t, errOut, "--cpuprofile")
	store := filepath.Join(dir, "store.json")
	require.NoError(t, os.WriteFile(store, []byte(`{"level":"store","command":"go test","workload":"w","runs":[
		{"mode":"replicated","writers":1,"events_per_s":10,"p50_ms":1,"p99_ms":2,"points":[{"p":50,"ms":1}],"batches":{"entries":3,"mean_actions_per_entry":2}},
		{"mode":"single","writers":1,"events_per_s":20},{"mode":"raw-raft","writers":1,"events_per_s":40}]}`), 0o644))
	gob := filepath.Join(dir, "go.txt")
	notes := filepath.Join(dir, "notes.md")
	require.NoError(t, os.WriteFile(gob, []byte("BenchmarkX 1 2 ns/op\n"), 0o644))
	require.NoError(t, os.WriteFile(notes, []byte("## Findings\n\nsome\n"), 0o644))
	md := filepath.Join(dir, "docs", "B.md")
	mustRun(t, "bench", "report", "--client", out, "--store", store, "--gobench", "fsm="+gob, "--gobench", gob,
		"--notes", notes, "--command", "make bench", "--out", md, "--plots", filepath.Join(dir, "docs", "bench"))
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	doc := string(b)
	requireContains(t, doc, "## Store level", "0.50×", "0.25×", "## Client level", "### conflict-storm",
		"## Findings", "BenchmarkX", "make bench", "bench/client-battle.svg", "bench/store.svg")
	require.False(t, strings.Contains(doc, "FAIL"), doc)
}

func TestBenchRejectsBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "nope"},
		{"bench", "--duration", "0s", "battle"},
		{"bench", "report"},
	} {
		code, _, errOut := ctl(t, "", args...)
		require.Equal(t, 1, code, "%v", args)
		require.Contains(t, errOut, "gsdctl: ")
	}
	code, _, _ := ctl(t, "", "bench", "report", "--client", "/nonexistent.json")
	require.Equal(t, 1, code)
	code, _, _ = ctl(t, "", "bench", "--gsd", "/nonexistent/gsd", "--dir", t.TempDir(), "--quiet", "battle")
	require.Equal(t, 1, code)
}

func requireContains(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		require.True(t, strings.Contains(s, sub), "want %q in:\n%s", sub, s)
	}
}
