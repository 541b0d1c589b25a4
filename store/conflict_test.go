package store

import (
	"context"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// 100 players race to claim one item with the same expect: exactly one
// wins, every loser sees the winner's version and value, and an incr on
// another field of the same entity never conflicts.
func TestHundredPlayersRacingOneFieldHaveExactlyOneWinner(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	events := make([]*fsm.Event, 100)
	incrs := make([]*fsm.Event, 100)
	var wg sync.WaitGroup
	for p := 0; p < 100; p++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			a := &fsm.Action{World: "arena", Player: name("p", p), Seq: 1, Ops: []fsm.Op{{
				Kind: fsm.OpSet, Entity: "sword", Field: "owner", Value: fsm.String(name("p", p)),
				Expect: fsm.Expect{Mode: fsm.ExpectAbsent},
			}}}
			ev, _, err := l.Act(ctxT(t), a)
			require.NoError(t, err)
			events[p] = ev
		}()
		go func() {
			defer wg.Done()
			ev, _, err := l.Act(ctxT(t), incr("arena", name("p", p), 2, "sword", "uses", 1))
			require.NoError(t, err)
			incrs[p] = ev
		}()
	}
	wg.Wait()
	var winner *fsm.Event
	for _, ev := range events {
		if ev.Status == fsm.StatusApplied {
			require.Nil(t, winner, "two winners")
			winner = ev
		}
	}
	require.NotNil(t, winner)
	for _, ev := range events {
		if ev == winner {
			continue
		}
		require.Equal(t, fsm.StatusConflict, ev.Status)
		require.Len(t, ev.Changes, 1)
		require.Equal(t, winner.Seq, ev.Changes[0].Version)
		require.Equal(t, fsm.String(winner.Player), ev.Changes[0].Value)
	}
	for _, ev := range incrs {
		require.Equal(t, fsm.StatusApplied, ev.Status)
	}
	v, err := l.Entity(ctxT(t), "arena", "sword", Linearizable)
	require.NoError(t, err)
	require.Equal(t, "uses", v.Fields[1].Name)
	require.Equal(t, int64(100), v.Fields[1].Value.Int)
	c.ensureSameHashes("arena")
}

func TestBatcherRefusesWhenLaneIsFullAndReportsCancelledCallersAsUnknown(t *testing.T) {
	// A batcher without its goroutines: nothing drains the lanes.
	b := &batcher{
		critical: make(chan *proposal, 1),
		bulk:     make(chan *proposal, 1),
		stop:     make(chan struct{}),
	}
	cmd := fsm.Command{Kind: fsm.CmdAction, Action: incr("arena", "p1", 1, "e1", "score", 1)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.submit(ctx, cmd, fsm.PriorityCritical, 10)
	require.ErrorIs(t, err, ErrOutcomeUnknown, "queued, then the caller gave up")
	_, err = b.submit(context.Background(), cmd, fsm.PriorityCritical, 10)
	require.ErrorIs(t, err, ErrOverloaded)
	_, err = b.submit(ctx, cmd, fsm.PriorityBulk, 10)
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	_, err = b.submit(context.Background(), cmd, fsm.PriorityBulk, 10)
	require.ErrorIs(t, err, ErrOverloaded)

	// close answers what was queued but never proposed with ErrNotLeader.
	b.close()
	require.Len(t, b.critical, 0)
	require.Len(t, b.bulk, 0)
	_, err = b.submit(context.Background(), cmd, fsm.PriorityCritical, 10)
	require.ErrorIs(t, err, ErrClosed)
}
