package webhook

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/stretchr/testify/require"
)

// Per-match worlds come and go: the export's replicated positions of
// the incarnations deleted since go with them, the current one's stay,
// and a node that restarts without its checkpoint file (another node
// taking over) resumes from the replicated position, sending nothing
// again.
func TestExportPrunesThePositionsOfDeletedWorldsAndARestartSendsNothingAgain(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	create := func(w string) {
		require.Eventually(t, func() bool {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			err := st.CreateWorld(cctx, w, fsm.Rules{})
			return err == nil || errors.Is(err, fsm.ErrWorldExists)
		}, 10*time.Second, 10*time.Millisecond)
	}
	seqs := map[string]uint64{}
	act := func(w string, n int) {
		for range n {
			seqs[w]++
			_, _, err := st.Act(ctx, &fsm.Action{World: w, Player: "p", Seq: seqs[w], Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "hits", By: 1}}})
			require.NoError(t, err)
		}
	}
	src := feed.NewStoreSource(st)
	incOf := func(w string) int64 {
		inc, ok := feed.Incarnation(src, w)
		require.True(t, ok, w)
		return inc
	}
	ids := func() []string {
		ents, _, err := st.Entities(feed.PositionsWorld)
		if errors.Is(err, fsm.ErrUnknownWorld) {
			return nil // no position written yet: the first write creates it
		}
		require.NoError(t, err)
		out := []string{}
		for _, e := range ents {
			out = append(out, e.ID)
		}
		return out
	}
	create("arena")
	create("match-1")
	act("arena", 20)
	act("match-1", 10)
	r := newReceiver(t, nil)
	rep := func() *feed.Replicated {
		rep, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "webhook", Writer: "n1", Every: 1, Interval: time.Millisecond},
			func(string) (feed.PositionGroup, error) { return st, nil })
		require.NoError(t, err)
		return rep
	}
	cfg := testConfig(t, r.srv.URL, t.TempDir())
	cfg.Positions = rep()
	s := startSink(t, cfg, src, nil)
	require.Eventually(t, func() bool { return s.s.Position("arena") == 20 && s.s.Position("match-1") == 10 }, 20*time.Second, time.Millisecond)
	arena1, match1 := incOf("arena"), incOf("match-1")
	require.Eventually(t, func() bool {
		return len(ids()) == 2
	}, 20*time.Second, time.Millisecond, "both positions replicated")

	// The match ends; the arena is reset (deleted and created again).
	_, err := st.DeleteWorld(ctx, "match-1", uint64(match1))
	require.NoError(t, err)
	_, err = st.DeleteWorld(ctx, "arena", uint64(arena1))
	require.NoError(t, err)
	seqs["arena"] = 0
	create("arena")
	arena2 := incOf("arena")
	act("arena", 5)
	want := []string{"webhook|" + strconv.FormatInt(arena2, 10) + "|arena"}
	require.Eventually(t, func() bool {
		got := ids()
		return len(got) == 1 && got[0] == want[0] && s.s.Position("arena") == 5
	}, 20*time.Second, time.Millisecond, "only the arena's current incarnation's position is left: %v", ids())
	s.stop()
	_, sent := r.world("arena")
	_, sentMatch := r.world("match-1")
	require.Equal(t, 25, sent, "20 events of the old arena, 5 of the new")
	require.Equal(t, 10, sentMatch)

	// Another node (a new checkpoint dir) takes over: it sends the
	// arena's new events only.
	cfg = testConfig(t, r.srv.URL, t.TempDir())
	cfg.Positions = rep()
	s = startSink(t, cfg, src, nil)
	act("arena", 3)
	require.Eventually(t, func() bool { return s.s.Position("arena") == 8 }, 20*time.Second, time.Millisecond)
	s.stop()
	_, sent = r.world("arena")
	require.Equal(t, 28, sent, "nothing sent again")
	_, sentMatch = r.world("match-1")
	require.Equal(t, 10, sentMatch)
	require.Equal(t, want, ids())
}
