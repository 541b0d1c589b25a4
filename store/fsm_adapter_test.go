package store

import (
	"log/slog"
	"strconv"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// TestApplyBatchLetsGoOfAKeptListItOutgrew: the adapter keeps its list of
// events for the next ApplyBatch; a batch with more events than it may
// keep (a follower catching up, a replay after a restart) grows past it,
// and the kept array, which appends filled first, must not go on pointing
// at those events (each holds its slab of events in memory).
func TestApplyBatchLetsGoOfAKeptListItOutgrew(t *testing.T) {
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	fd := newFeed(openTestArchive(t), 16, slog.New(slog.DiscardHandler))
	t.Cleanup(fd.close)
	a := newFSMAdapter(f, fd)
	index, seq := uint64(0), uint64(0)
	entry := func(n int) *raft.Log {
		cmds := make([]fsm.Command, n)
		for i := range cmds {
			seq++
			cmds[i] = fsm.Command{Kind: fsm.CmdAction, Action: incr("w", "p"+strconv.Itoa(i), seq, "e", "score", 1)}
		}
		index++
		return &raft.Log{Type: raft.LogCommand, Index: index, Data: fsm.EncodeBatch(&fsm.Batch{Time: int64(index), Commands: cmds})}
	}
	index++
	a.ApplyBatch([]*raft.Log{{Type: raft.LogCommand, Index: index, Data: fsm.EncodeBatch(&fsm.Batch{Commands: []fsm.Command{
		{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: "w"}}}})}})

	a.ApplyBatch([]*raft.Log{entry(8)})
	kept := a.events[:cap(a.events)]
	require.NotEmpty(t, kept, "a small batch's list is kept")
	for _, e := range kept {
		require.Nil(t, e, "the kept list holds no event after its batch")
	}

	var big []*raft.Log
	for n := 0; n <= maxEventsReuse; n += 512 {
		big = append(big, entry(512))
	}
	out := a.ApplyBatch(big)
	last := out[len(out)-1].([]fsm.Result)
	require.Equal(t, fsm.StatusApplied, last[len(last)-1].Event.Status)
	require.Nil(t, a.events, "a list past the bound is not kept")
	for i, e := range kept {
		require.Nil(t, e, "the outgrown kept list still points at event %d", i)
	}
}
