package store

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// The deletions a replica remembers are bounded: the oldest is forgotten
// first, and one added twice is kept once.
func TestDeletionsForgetTheOldestBeyondTheirBound(t *testing.T) {
	var d deletions
	require.False(t, d.has("w0", 1))
	for i := range maxDeletions {
		d.add(fmt.Sprintf("w%d", i), 1)
	}
	d.add("w0", 1) // again: nothing changes
	require.Len(t, d.order, maxDeletions)
	require.True(t, d.has("w0", 1))
	require.False(t, d.has("w0", 2), "another incarnation")
	d.add("last", 7)
	require.False(t, d.has("w0", 1), "the oldest went")
	require.True(t, d.has("w1", 1))
	require.True(t, d.has("last", 7))
	require.Len(t, d.set, maxDeletions)
}
