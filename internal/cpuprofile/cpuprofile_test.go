package cpuprofile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cpu.pprof")
	stop, err := Start(p)
	require.NoError(t, err)
	_, err = Start(filepath.Join(dir, "second.pprof"))
	require.ErrorContains(t, err, "--cpuprofile", "one profile at a time")
	stop()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Positive(t, fi.Size())
	_, err = Start(filepath.Join(dir, "no", "such", "cpu.pprof"))
	require.ErrorContains(t, err, "--cpuprofile")
}
