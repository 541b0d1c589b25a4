package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFloorIsThePerComponentMinimum: each component is the least of its
// inputs, so a floor can be below every input (no one node reads it
// exactly), and every input covers it.
func TestFloorIsThePerComponentMinimum(t *testing.T) {
	a := Versions{Log: 14, Snapshot: 4, Wire: 2}
	b := Versions{Log: 7, Snapshot: 10, Wire: 1}
	f := Floor(a, b)
	require.Equal(t, Versions{Log: 7, Snapshot: 4, Wire: 1}, f)
	require.True(t, a.Covers(f))
	require.True(t, b.Covers(f))
	require.Equal(t, a, Floor(a), "one input is its own floor")
	require.Equal(t, Baseline(), Floor(Supported(), Baseline(), Supported()))
	require.True(t, Floor().IsZero(), "no input: nothing")
}
