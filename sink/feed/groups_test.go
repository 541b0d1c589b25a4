package feed_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/internal/sinktest"
	"github.com/stretchr/testify/require"
)

// moving is a Source whose worlds a move imports into another group at
// index imported (0: not moved), as shard.FeedSource lists them.
type moving struct {
	*sinktest.Source
	imported atomic.Uint64
}

func (m *moving) Worlds() []fsm.WorldInfo {
	ws := m.Source.Worlds()
	for i := range ws {
		ws[i].Imported = m.imported.Load()
	}
	return ws
}

func (m *moving) World(id string) (fsm.WorldInfo, error) {
	w, err := m.Source.World(id)
	w.Imported = m.imported.Load()
	return w, err
}

// A world that moved to another group of the node (imported there) gets no
// more events on the group its session reads: the follower stops that
// session and follows the world anew at its new home, from the stored
// position, so nothing is skipped or repeated.
func TestFollowerFollowsAMovedWorldAnewAtItsNewHome(t *testing.T) {
	inner := sinktest.NewSource()
	inner.Add("w", 5, 1000)
	inc := inner.Incarnation("w")
	m := &moving{Source: inner}
	tg := &target{}
	fl := startFollower(t, testConfig(), feed.NewGroupsSource[feed.Subscription](m), map[string]*target{"w": tg})
	require.Eventually(t, at(tg, inc, 5), 10*time.Second, time.Millisecond)

	m.imported.Store(42)
	require.Eventually(t, func() bool { return fl.count(fl.stopped, "w") == 1 && fl.count(fl.started, "w") == 2 }, 10*time.Second, time.Millisecond)
	inner.Add("w", 5, 1000)
	require.Eventually(t, at(tg, inc, 10), 10*time.Second, time.Millisecond)
	fl.stop()
	require.Equal(t, 2, fl.count(fl.started, "w"), "followed anew once, not on every check")
	requireOnce(t, tg, inc, 10)
}
