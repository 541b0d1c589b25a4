package files

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/stretchr/testify/require"
)

// A deleted match's open file is finished (its events are kept), and
// its replicated position, which the session's end stores, does not
// outlive it: the follower's next prune after the session ended removes
// it.
func TestFilesFinishADeletedWorldsFileAndThenPruneItsPosition(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	require.NoError(t, st.CreateWorld(ctx, "match", fsm.Rules{}))
	for seq := uint64(1); seq <= 30; seq++ {
		_, _, err := st.Act(ctx, &fsm.Action{World: "match", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
		require.NoError(t, err)
	}
	src := feed.NewStoreSource(st)
	inc, ok := feed.Incarnation(src, "match")
	require.True(t, ok)
	rep, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "files", Writer: "n1", Every: 1000, Interval: time.Millisecond},
		func(string) (feed.PositionGroup, error) { return st, nil })
	require.NoError(t, err)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxAge = time.Hour // the file stays open until the session ends
	cfg.Positions = rep
	s := startSink(t, cfg, src)
	require.Eventually(t, func() bool {
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		return len(ents) == 1 && strings.HasPrefix(ents[0].Name(), openPrefix)
	}, 30*time.Second, time.Millisecond, "the match's events go to an open file")

	_, err = st.DeleteWorld(ctx, "match", uint64(inc))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(lines(t, dir, "match")[inc]) > 0 }, 10*time.Second, time.Millisecond,
		"the deleted world's open file is finished")
	got := lines(t, dir, "match")[inc]
	require.Equal(t, seqRange(1, uint64(len(got))), got)
	require.Eventually(t, func() bool {
		ents, _, err := st.Entities(feed.PositionsWorld)
		return err == nil && len(ents) == 0
	}, 10*time.Second, time.Millisecond, "its position is pruned once the session ended")
	s.stop()
}
