package plan

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlaceTakesTheMostHeadroomThenTheLowestID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shards []Load
		want   uint64
	}{
		{"fewest worlds", []Load{{ID: 1, Worlds: 2}, {ID: 2, Worlds: 1, Players: 9, Events: 9}}, 2},
		{"then players", []Load{{ID: 1, Worlds: 1, Players: 2}, {ID: 2, Worlds: 1, Players: 1, Events: 9}}, 2},
		{"then events", []Load{{ID: 1, Worlds: 1, Events: 2}, {ID: 2, Worlds: 1, Events: 1}}, 2},
		{"then the lowest id", []Load{{ID: 7}, {ID: 3}}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Place(tc.shards)
			require.True(t, ok)
			require.Equal(t, tc.want, got)
		})
	}
	_, ok := Place(nil)
	require.False(t, ok)
}
