package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// verify reads at most --max-salts-bytes of a salts file: one of exactly
// that size is read, a larger one refused with the flag named, a limit
// below 1 is a usage error.
func TestVerifyRefusesASaltsFileOverItsSizeLimit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "m.salts")
	require.NoError(t, os.WriteFile(file, []byte(strings.Repeat("x", 100)), 0o644))
	b, err := readSalts(file, 100)
	require.NoError(t, err)
	require.Len(t, b, 100)
	_, err = readSalts(file, 99)
	require.ErrorAs(t, err, new(usageError))
	require.ErrorContains(t, err, "larger than 99 bytes (--max-salts-bytes)")
	b, err = readSalts(file, math.MaxInt64) // the largest limit: max+1 must not overflow into reading nothing
	require.NoError(t, err)
	require.Len(t, b, 100)
	_, err = readSalts(file, 0)
	require.ErrorContains(t, err, "--max-salts-bytes 0")
	_, err = readSalts(filepath.Dir(file), 100) // a directory opens, and is not read
	require.Error(t, err)
	_, err = readSalts(file+".missing", 100)
	require.ErrorAs(t, err, new(usageError))
	require.Equal(t, int64(64<<20), int64(DefaultMaxSaltsBytes))
}
