package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func bulkIncr(world, player string, seq uint64) *fsm.Action {
	a := incr(world, player, seq, "e", "c", 1)
	a.Priority = fsm.PriorityBulk
	return a
}

func newTestProposal(a *fsm.Action) *proposal {
	return &proposal{cmd: fsm.Command{Kind: fsm.CmdAction, Action: a}, size: 64, done: make(chan outcome, 1)}
}

// The batcher takes queued critical actions before queued bulk ones, even
// when the bulk ones were queued first: with the only in-flight slot taken,
// two bulk then two critical actions wait in their lanes; once the slot
// frees, the critical pair goes first.
func TestBatcherTakesTheCriticalLaneBeforeTheBulkLane(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Batch.MaxActions = 3
		cfg.Batch.MaxInflight = 1
		cfg.Batch.MaxWait = 0
	})
	l := c.leader()
	mustCreateWorld(t, l, "w")
	b := l.batcher

	b.sem <- struct{}{} // the only in-flight slot
	// The pilot goes into the lane here, so once the lane is empty the
	// batcher holds it and waits for the slot. It fills an entry's bytes
	// by itself, so the batcher reads no lane meanwhile (a smaller pilot
	// left it filling its batch, where on a loaded machine it could still
	// take the bulk actions queued next).
	pilot := newTestProposal(incr("w", "pilot", 1, "e", "c", 1))
	pilot.size = b.cfg.MaxBytes
	b.critical <- pilot
	require.Eventually(t, func() bool { return len(b.critical) == 0 }, 10*time.Second, time.Millisecond, "the batcher took the pilot")
	bulk := []<-chan actResult{actAsync(t, l, bulkIncr("w", "b1", 1)), actAsync(t, l, bulkIncr("w", "b2", 1))}
	require.Eventually(t, func() bool { return len(b.bulk) == 2 }, 10*time.Second, time.Millisecond)
	critical := []<-chan actResult{actAsync(t, l, incr("w", "c1", 1, "e", "c", 1)), actAsync(t, l, incr("w", "c2", 1, "e", "c", 1))}
	require.Eventually(t, func() bool { return len(b.critical) == 2 }, 10*time.Second, time.Millisecond)
	<-b.sem

	get := func(ch <-chan actResult) *fsm.Event {
		r := <-ch
		require.NoError(t, r.err)
		require.Equal(t, fsm.StatusApplied, r.ev.Status)
		return r.ev
	}
	po := <-pilot.done
	require.NoError(t, po.err)
	require.Equal(t, uint64(1), po.res.Event.Seq)
	c1, c2 := get(critical[0]), get(critical[1])
	b1, b2 := get(bulk[0]), get(bulk[1])
	for _, cr := range []*fsm.Event{c1, c2} {
		for _, bu := range []*fsm.Event{b1, b2} {
			require.Less(t, cr.Seq, bu.Seq, "critical %s before bulk %s", cr.Player, bu.Player)
		}
	}
	require.Equal(t, c1.Index, c2.Index, "the critical pair shares the next entry")
	// That entry took one bulk action to fill up; the other went next.
	require.NotEqual(t, b1.Index, b2.Index)
	require.Contains(t, []uint64{b1.Index, b2.Index}, c1.Index)
}

// Inside one entry critical actions apply before bulk ones, whatever order
// the batch gathered them in (a bulk action can be taken first while the
// critical lane is empty).
func TestBatcherPutsCriticalActionsFirstInsideAnEntry(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	mustCreateWorld(t, l, "w")
	b := l.batcher
	prop := newTestProposal
	bu1, cr1, bu2, cr2 := prop(bulkIncr("w", "b1", 1)), prop(incr("w", "c1", 1, "e", "c", 1)),
		prop(bulkIncr("w", "b2", 1)), prop(incr("w", "c2", 1, "e", "c", 1))
	b.sem <- struct{}{}    // the waiter returns the slot of every proposed entry
	var cmds []fsm.Command // its own: run may propose meanwhile (a notice, the node's versions)
	b.propose([]*proposal{bu1, cr1, bu2, cr2}, false, &cmds)

	seq := map[string]uint64{}
	var index uint64
	for _, p := range []*proposal{bu1, cr1, bu2, cr2} {
		o := <-p.done
		require.NoError(t, o.err)
		require.Equal(t, fsm.StatusApplied, o.res.Event.Status)
		seq[o.res.Event.Player] = o.res.Event.Seq
		if index == 0 {
			index = o.res.Event.Index
		}
		require.Equal(t, index, o.res.Event.Index, "one entry")
	}
	require.Equal(t, map[string]uint64{"c1": 1, "c2": 2, "b1": 3, "b2": 4}, seq,
		"critical first, each lane in the order it was gathered")
}

// Proposals are recycled once their caller has its outcome: under many
// concurrent callers each still gets the event of its own action.
func TestBatcherAnswersEachCallerWithItsOwnEventUnderConcurrency(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	mustCreateWorld(t, l, "w")
	const writers, each = 32, 40
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			player := name("p", w)
			for seq := uint64(1); seq <= each; seq++ {
				ev, dup, err := l.Act(ctxT(t), incr("w", player, seq, name("e", w%4), "c", 1))
				switch {
				case err != nil:
					errs <- err
					return
				case dup || ev.Player != player || ev.ClientSeq != seq:
					errs <- fmt.Errorf("%s seq %d got the event of %s seq %d (duplicate %v)", player, seq, ev.Player, ev.ClientSeq, dup)
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		require.NoError(t, <-errs)
	}
}
