package plan

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashedIgnoresTheOrderOfShards(t *testing.T) {
	a, ok := Hashed("arena", []uint64{3, 1, 2})
	require.True(t, ok)
	b, _ := Hashed("arena", []uint64{1, 2, 3})
	require.Equal(t, a, b)
	// fnv64a("arena") mod 3 picks one of the three; with one shard, it.
	one, _ := Hashed("arena", []uint64{9})
	require.Equal(t, uint64(9), one)
	_, ok = Hashed("arena", nil)
	require.False(t, ok)
}
