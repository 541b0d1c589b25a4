package feed_test

import (
	"testing"

	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/stretchr/testify/require"
)

func TestReservedWorldsAreSelectedOnlyWhenAskedForOrNamed(t *testing.T) {
	for _, tc := range []struct {
		world    string
		worlds   []string
		reserved bool
		want     bool
	}{
		{"arena", nil, false, true},
		{"gsd.sinks", nil, false, false},
		{"gsd.relays", nil, false, false},
		{"gsd.moderation", nil, true, true},
		{"gsd.relays", []string{"gsd.relays"}, false, true},
		{"gsd.relays", []string{"arena"}, true, false},
		{"arena", []string{"other"}, false, false},
		{"gsdx", nil, false, true},
		{"gsd", nil, false, true},
	} {
		require.Equal(t, tc.want, feed.Selected(tc.world, tc.worlds, tc.reserved), "%+v", tc)
	}
	require.True(t, feed.Reserved(feed.PositionsWorld))
}
