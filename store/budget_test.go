package store

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestNewBudgetRefusesLessThanOneEntry(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1} {
		_, err := NewBudget(n)
		require.ErrorContains(t, err, "at least one entry", "n=%d", n)
	}
	b, err := NewBudget(3)
	require.NoError(t, err)
	require.Equal(t, 3, b.Size())
	require.Zero(t, b.InUse())
}

func TestConfigRefusesANegativeNodeInflight(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "n1", t.TempDir())
	cfg.Batch.NodeInflight = -1
	require.ErrorContains(t, cfg.Validate(), "bad batch config")
	require.GreaterOrEqual(t, DefaultConfig().Batch.NodeInflight, 2)
}

// budgetPair is two one-node groups whose batchers share one budget.
func budgetPair(t *testing.T, size int, tweak func(*Config)) (*Budget, [2]*Store) {
	t.Helper()
	budget, err := NewBudget(size)
	require.NoError(t, err)
	var stores [2]*Store
	for i := range stores {
		stores[i] = newCluster(t, 1, func(cfg *Config) {
			cfg.Budget = budget
			// The budget's own rule: small bulk batches pipeline (busy
			// holds a slot that never frees, which BulkPipelineMin's
			// bulk batch would wait for).
			cfg.Batch.BulkPipelineMin = 0
			if tweak != nil {
				tweak(cfg)
			}
		}).leader()
		mustCreateWorld(t, stores[i], "w")
	}
	return budget, stores
}

// queue puts n critical actions straight into s's critical lane and
// returns them.
func queue(s *Store, prefix string, n int) []*proposal {
	ps := make([]*proposal, n)
	for i := range ps {
		ps[i] = newTestProposal(incr("w", name(prefix, i), 1, "e", "c", 1))
		s.batcher.critical <- ps[i]
	}
	return ps
}

// queueBulk puts n bulk actions straight into s's bulk lane and returns
// them. The budget bounds bulk entries beyond a group's first in flight,
// so the budget tests hold one of the group's own slots first (busy).
func queueBulk(s *Store, prefix string, n int) []*proposal {
	ps := make([]*proposal, n)
	for i := range ps {
		a := incr("w", name(prefix, i), 1, "e", "c", 1)
		a.Priority = fsm.PriorityBulk
		ps[i] = newTestProposal(a)
		s.batcher.bulk <- ps[i]
	}
	return ps
}

// busy takes one of s's in-flight slots, as an entry in flight would,
// until the test ends.
func busy(t *testing.T, s *Store) {
	s.batcher.sem <- struct{}{}
	t.Cleanup(func() { <-s.batcher.sem })
}

// While the node's budget is spent no group proposes: each group's
// batcher gathers everything queued meanwhile, so once the budget frees
// each group's actions share one entry (without a shared budget the first
// action of each group would have gone out alone at once).
func TestGroupsSharingASpentBudgetGatherIntoOneEntryEach(t *testing.T) {
	t.Parallel()
	budget, stores := budgetPair(t, 1, nil)
	budget.tokens <- struct{}{} // the node's only entry in flight
	const n = 20
	var props [2][]*proposal
	for i, s := range stores {
		busy(t, s)
		props[i] = queueBulk(s, fmt.Sprintf("s%dp", i), n)
	}
	for _, s := range stores {
		require.Eventually(t, func() bool { return len(s.batcher.bulk) == 0 }, 10*time.Second, time.Millisecond,
			"the batcher took the queued actions")
	}
	<-budget.tokens
	for i := range stores {
		var index uint64
		for _, p := range props[i] {
			o := <-p.done
			require.NoError(t, o.err)
			require.Equal(t, fsm.StatusApplied, o.res.Event.Status)
			if index == 0 {
				index = o.res.Event.Index
			}
			require.Equal(t, index, o.res.Event.Index, "store %d: one entry for all %d actions", i, n)
		}
	}
	require.Eventually(t, func() bool { return budget.InUse() == 0 }, 10*time.Second, time.Millisecond,
		"every committed entry gave its slot back")
}

// A group waiting for its own in-flight slot (MaxInflight) gathers too.
func TestBatcherGathersWhileItsInflightSlotsAreTaken(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cfg *Config) { cfg.Batch.MaxInflight = 1 })
	l := c.leader()
	mustCreateWorld(t, l, "w")
	l.batcher.sem <- struct{}{}
	ps := queue(l, "p", 10)
	require.Eventually(t, func() bool { return len(l.batcher.critical) == 0 }, 10*time.Second, time.Millisecond)
	<-l.batcher.sem
	var index uint64
	for _, p := range ps {
		o := <-p.done
		require.NoError(t, o.err)
		if index == 0 {
			index = o.res.Event.Index
		}
		require.Equal(t, index, o.res.Event.Index, "one entry")
	}
}

// One writer never waits for a linger: with nothing in flight its action
// is proposed at once, even with MaxWait an hour and a shared budget.
func TestSingleWriterIsProposedAtOnceWithASharedBudget(t *testing.T) {
	t.Parallel()
	_, stores := budgetPair(t, 1, func(cfg *Config) { cfg.Batch.MaxWait = time.Hour })
	for seq := uint64(1); seq <= 20; seq++ {
		ev, _, err := stores[seq%2].Act(ctxT(t), incr("w", "p", seq/2+1, "e", "c", 1))
		require.NoError(t, err)
		require.Equal(t, fsm.StatusApplied, ev.Status)
	}
}

// Closing a group while it waits for the budget answers what it gathered
// (never proposed) and frees its own slot.
func TestClosingAGroupWaitingForTheBudgetAnswersItsBatch(t *testing.T) {
	t.Parallel()
	budget, stores := budgetPair(t, 1, nil)
	budget.tokens <- struct{}{}
	stores[0].batcher.sem <- struct{}{} // an entry in flight (Close answers what is queued)
	ps := queueBulk(stores[0], "p", 3)
	require.Eventually(t, func() bool { return len(stores[0].batcher.bulk) == 0 }, 10*time.Second, time.Millisecond)
	require.NoError(t, stores[0].Close(ctxT(t)))
	for _, p := range ps {
		require.ErrorIs(t, (<-p.done).err, ErrNotLeader)
	}
	require.Equal(t, 1, budget.InUse(), "the closed group took no slot of the budget")
	<-budget.tokens
	ev, _, err := stores[1].Act(ctxT(t), incr("w", "q", 1, "e", "c", 1))
	require.NoError(t, err)
	require.Equal(t, fsm.StatusApplied, ev.Status)
}

// A spent budget (another group's entries holding every token, as a
// group whose quorum is gone does until it steps down) stalls neither a
// group's first entry in flight nor a critical action behind bulk ones.
func TestASpentBudgetStallsNoGroupsFirstEntryAndNoCriticalAction(t *testing.T) {
	t.Parallel()
	budget, stores := budgetPair(t, 1, nil)
	budget.tokens <- struct{}{} // held for the whole test
	s := stores[0]
	bulk := incr("w", "b", 1, "e", "c", 1)
	bulk.Priority = fsm.PriorityBulk
	ev, _, err := s.Act(ctxT(t), bulk)
	require.NoError(t, err, "a bulk action with nothing else of its group in flight")
	require.Equal(t, fsm.StatusApplied, ev.Status)
	busy(t, s) // now another entry of the group is in flight
	ev, _, err = s.Act(ctxT(t), incr("w", "c", 1, "e", "c", 1))
	require.NoError(t, err, "a critical action")
	require.Equal(t, fsm.StatusApplied, ev.Status)
	require.Equal(t, 1, budget.InUse())
}

// Many writers over two groups sharing a budget all get their own events,
// and the slots all come back.
func TestGroupsSharingABudgetAnswerConcurrentWriters(t *testing.T) {
	t.Parallel()
	budget, stores := budgetPair(t, 2, nil)
	const writers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for i, s := range stores {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				player := fmt.Sprintf("s%dp%d", i, w)
				for seq := uint64(1); seq <= each; seq++ {
					ev, _, err := s.Act(ctxT(t), incr("w", player, seq, "e", "c", 1))
					if err == nil && (ev.Player != player || ev.ClientSeq != seq) {
						err = fmt.Errorf("%s seq %d got %s seq %d", player, seq, ev.Player, ev.ClientSeq)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return budget.InUse() == 0 }, 10*time.Second, time.Millisecond)
}

// With BulkPipelineMin 0 session acks are critical, as before it
// existed: while the node's budget is spent by another group and this
// group has an entry in flight, an acks batch still goes (a group's
// critical entries take no token). Counting acks as waitable there made
// them wait for the budget (and a critical action that joined them with
// them), until the group holding it stepped down.
func TestSessionAcksDoNotWaitForTheBudgetWithBulkPipelineMinOff(t *testing.T) {
	t.Parallel()
	budget, stores := budgetPair(t, 1, func(cfg *Config) { cfg.Batch.MaxWait = 0 })
	s := stores[0]
	budget.tokens <- struct{}{} // the other group holds the node's only token
	t.Cleanup(func() { <-budget.tokens })
	busy(t, s)
	acks := &proposal{cmd: fsm.Command{Kind: fsm.CmdSessionAcks, Acks: []fsm.SessionAck{{World: "w", ID: "s1", Seq: 1}}},
		size: 64, done: make(chan outcome, 1)}
	s.batcher.critical <- acks
	select {
	case o := <-acks.done:
		require.NoError(t, o.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the acks waited for the node's budget")
	}
	o := <-queue(s, "c", 1)[0].done
	require.NoError(t, o.err)
}
