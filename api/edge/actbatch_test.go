package edge

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

func TestActQueueTakeSkipsAbandonedActionsAndBoundsACall(t *testing.T) {
	q := &actQueue{senders: 1}
	var ps []*pendingAct
	for i := range 5 {
		p := &pendingAct{a: &fsm.Action{Seq: uint64(i + 1)}}
		ps = append(ps, p)
		q.pending = append(q.pending, p)
	}
	ps[1].state.Store(actAbandoned) // its caller gave up before it was taken
	batch := q.take(2)
	require.Equal(t, []*pendingAct{ps[0], ps[2]}, batch)
	require.Equal(t, actTaken, ps[0].state.Load())
	batch = q.take(2)
	require.Equal(t, []*pendingAct{ps[3], ps[4]}, batch)
	require.Equal(t, 1, q.senders, "a sender that found actions keeps going")
	require.Nil(t, q.take(2))
	require.Zero(t, q.senders, "a sender that finds none stops")
	require.Empty(t, q.pending)
}

func TestActionsWaitingOnAClosingNodeFail(t *testing.T) {
	s := &Core{closed: true}
	q := &actQueue{senders: 1}
	p := &pendingAct{a: &fsm.Action{Seq: 1}, done: make(chan actOutcome, 1)}
	q.pending = append(q.pending, p)
	s.senderDone(Route{Node: "n1"}, q) // the last caller's own call ended
	o := <-p.done
	require.ErrorIs(t, o.err, store.ErrClosed)
	require.Zero(t, q.senders)
	require.Empty(t, q.pending)

	s.senderDone(Route{Node: "n1"}, &actQueue{senders: 1}) // nothing waits
}
