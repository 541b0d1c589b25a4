package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStartCPUProfile(t *testing.T) {
	dir := t.TempDir()
	stop, err := startCPUProfile("", dir)
	require.NoError(t, err)
	stop() // nothing to stop
	require.NoFileExists(t, filepath.Join(dir, "cpu.pprof"))

	stop, err = startCPUProfile("cpu.pprof", dir) // relative: in the data dir
	require.NoError(t, err)
	stop()
	fi, err := os.Stat(filepath.Join(dir, "cpu.pprof"))
	require.NoError(t, err)
	require.Positive(t, fi.Size())

	_, err = startCPUProfile(filepath.Join(dir, "no", "such", "dir", "cpu.pprof"), dir)
	require.ErrorContains(t, err, "--cpuprofile")
}
