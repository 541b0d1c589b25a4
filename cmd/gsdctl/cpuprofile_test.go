package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStartCPUProfile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lg.pprof")
	stop, err := startCPUProfile(p)
	require.NoError(t, err)
	_, err = startCPUProfile(filepath.Join(dir, "second.pprof"))
	require.ErrorContains(t, err, "--cpuprofile", "one profile at a time")
	stop()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Positive(t, fi.Size())
	_, err = startCPUProfile(filepath.Join(dir, "no", "such", "lg.pprof"))
	require.ErrorContains(t, err, "--cpuprofile")
}
