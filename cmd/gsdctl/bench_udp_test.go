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

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/internal/testbin"
	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/gsd-dev/gsd/loadgen"
	"github.com/stretchr/testify/require"
)

// bench play --play-bulk-over udp --auth starts its nodes with a UDP lane
// and auth on, and sends the bulk moves over the lane: the nodes accept
// and apply them, and the players' tokens are taken.
func TestBenchPlayBulkOverUDPWithAuthOnALocalNode(t *testing.T) {
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
		"--players", "4", "--rate", "50", "--bulk-rate", "200", "--play-bulk-over", "udp", "--auth",
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
	require.Equal(t, "client (WebSocket play, bulk over UDP, JWT auth)", r.Level)
	require.Equal(t, "hs256", r.Params["auth"])
	require.Positive(t, r.Counts["applied"])
	require.Positive(t, r.Counts["udp_packets_accepted"])
	require.Positive(t, r.Counts["udp_actions_applied"])
	require.Zero(t, r.Counts["udp_packets_forged"])
	require.Zero(t, r.Counts["udp_packets_replayed"])
}

func TestBenchRejectsBadPlayTransportAndAuthFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--play-bulk-over", "tcp", "play"}, "--play-bulk-over"},
		{[]string{"bench", "--auth", "play", "battle"}, "play scenario only"},
		{[]string{"--addr", "127.0.0.1:1", "bench", "--auth", "play"}, "--auth-key-file"},
		{[]string{"bench", "--auth-key-file", "k", "play"}, "needs --auth"},
	} {
		code, _, errOut := ctl(t, "", c.args...)
		require.Equal(t, 1, code, "%v", c.args)
		require.Contains(t, errOut, c.want, "%v", c.args)
	}
	// A key file that cannot be written: the cluster is not started.
	code, _, errOut := ctl(t, "", "bench", "--gsd", "/bin/true", "--dir", "/proc/nope", "--auth", "--quiet", "play")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "gsdctl: ")
}

// --auth with --addr signs the players' tokens with --auth-key-file; a
// key file that cannot be read fails the run.
func TestBenchPlayWithAuthAgainstAnAddr(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	addr := testnode.StartWith(t, func(c *api.Config) { c.Auth = &api.AuthConfig{HS256Key: key} })
	dir := t.TempDir()
	kf := filepath.Join(dir, "hs256.key")
	require.NoError(t, os.WriteFile(kf, append(key, '\n'), 0o600))
	out := mustRun(t, "--addr", addr, "bench", "--auth", "--auth-key-file", kf, "--quiet", "--players", "3", "--rate", "50",
		"--warmup", "0s", "--duration", "200ms", "--out", filepath.Join(dir, "r.json"), "play")
	requireContains(t, out, "JWT auth")
	code, _, errOut := ctl(t, "", "--addr", addr, "bench", "--auth", "--auth-key-file", filepath.Join(dir, "none"), "--quiet",
		"--players", "3", "--duration", "200ms", "play")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "hs256 key")
}
