//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/testbin"
	"github.com/stretchr/testify/require"
)

// The demo is what a newcomer runs first: it must start a cluster, survive
// killing its leader, and say that the replicas agree and nothing was lost.
func TestDemoRunsABattleThroughALeaderKillAndVerifiesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three gsd processes")
	}
	bin := testbin.GSD(t)
	t.Setenv("GOCOVERDIR", testbin.CoverDir(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"demo", "--gsd", bin, "--duration", "4s", "--down", "1s", "--players", "8", "--items", "2"},
		nil, &out, &errb)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	require.Contains(t, out.String(), "replica hashes      EQUAL")
	require.Contains(t, out.String(), ": consistent")
	require.Contains(t, out.String(), "failover            killed leader")
}

func TestDemoRefusesBadSizesAndAMissingBinary(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 1, run(context.Background(), []string{"demo", "--players", "0"}, nil, &out, &errb))
	require.Contains(t, errb.String(), "must be positive")
	errb.Reset()
	require.Equal(t, 1, run(context.Background(), []string{"demo", "--gsd", "/nonexistent/gsd", "--duration", "1s"}, nil, &out, &errb))
	require.Contains(t, errb.String(), "gsdctl:")
}

func TestFindGSDPrefersTheFlagThenPATH(t *testing.T) {
	p, err := findGSD("/opt/gsd/bin/gsd")
	require.NoError(t, err)
	require.Equal(t, "/opt/gsd/bin/gsd", p)

	// The test binary has no gsd beside it: the search falls to $PATH.
	dir := t.TempDir()
	bin := filepath.Join(dir, "gsd")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("PATH", dir)
	p, err = findGSD("")
	require.NoError(t, err)
	require.Equal(t, bin, p)

	t.Setenv("PATH", t.TempDir())
	_, err = findGSD("")
	require.ErrorContains(t, err, "make build")
}

// gsdctl bench with its own local cluster: the failover scenario kills the
// leader under load and checks that no acknowledged action was lost.
func TestBenchFailoverOnItsOwnClusterLosesNoAcknowledgedAction(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three gsd processes")
	}
	bin := testbin.GSD(t)
	t.Setenv("GSD_BENCH_COVER", "1") // the gsd processes write coverage to $GSD_GOCOVERDIR
	out := filepath.Join(t.TempDir(), "f.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"bench", "--gsd", bin, "--quiet", "--duration", "2s", "--warmup", "300ms",
		"--players", "20", "--items", "3", "--rate", "100", "--batch", "4", "--conns", "4", "--observers", "1",
		"--kill-after", "500ms", "--down", "500ms", "--out", out, "failover"}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), "failover: killed leader")
	require.Contains(t, stdout.String(), "check no lost acknowledgements")
	require.Regexp(t, `check no lost acknowledgements\s+ok: \d+ acknowledged events checked against the log, 0 missing`, stdout.String())
	_, err := os.Stat(out)
	require.NoError(t, err)
}
