//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/testbin"
	"github.com/gsd-dev/gsd/loadgen"
	"github.com/stretchr/testify/require"
)

// bench play --play-bulk-over udp starts its nodes with a UDP lane and
// sends the bulk moves over it: the nodes accept and apply them.
func TestBenchPlayBulkOverUDPOnALocalNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gsd process")
	}
	bin := testbin.GSD(t)
	t.Setenv("GOCOVERDIR", testbin.CoverDir(t))
	t.Setenv("GSD_BENCH_COVER", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "r.json")
	var stdout, errb bytes.Buffer
	code := run(ctx, []string{"bench", "--gsd", bin, "--nodes", "1", "--no-sync", "--quiet", "--dir", t.TempDir(),
		"--players", "4", "--rate", "50", "--bulk-rate", "200", "--play-bulk-over", "udp",
		"--warmup", "0s", "--duration", "500ms", "--out", out, "play"}, nil, &stdout, &errb)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), errb.String())
	requireContains(t, stdout.String(), "play-udp", "udp_packets_accepted=", "r-play-udp.svg")

	var rep loadgen.Report
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Len(t, rep.Results, 1)
	r := rep.Results[0]
	require.Equal(t, "play-udp", r.Scenario)
	require.Positive(t, r.Counts["udp_packets_accepted"])
	require.Positive(t, r.Counts["udp_actions_applied"])
	require.Zero(t, r.Counts["udp_packets_forged"])
	require.Zero(t, r.Counts["udp_packets_replayed"])
}

func TestBenchRejectsAnUnknownBulkTransport(t *testing.T) {
	code, _, errOut := ctl(t, "", "bench", "--play-bulk-over", "tcp", "play")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--play-bulk-over")
}
