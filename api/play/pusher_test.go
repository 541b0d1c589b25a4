package play

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// offerWait waits for room in a full queue: it goes on when the writer
// takes, cuts the connection off (slow consumer) when the queue stays full
// for SlowTimeout, and gives up when the connection ends.
func TestOfferWaitWaitsForRoomThenCutsOffOrGivesUp(t *testing.T) {
	second := []*hubEvent{{ev: &fsm.Event{Seq: 2}, frame: []byte(`{}`)}}
	// conn's queue of one frame is full.
	conn := func(slow time.Duration) *playConn {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		c := &playConn{cfg: Config{SlowTimeout: slow, QueueSize: 1}, ob: newOutbox(1, codecJSON), ctx: ctx, cancel: cancel}
		require.True(t, c.offerWait([]*hubEvent{{ev: &fsm.Event{Seq: 1}, frame: []byte(`{}`)}}, nil))
		return c
	}

	// The writer takes while it waits: the second frame goes in.
	c := conn(time.Hour)
	done := make(chan bool, 1)
	go func() { done <- c.offerWait(second, nil) }()
	var ok bool
	for waiting := true; waiting; {
		select {
		case ok = <-done:
			waiting = false
		case <-time.After(time.Millisecond): // it waits (most likely by now): the writer takes
			_, err := c.ob.take()
			require.NoError(t, err)
		}
	}
	require.True(t, ok)
	require.Equal(t, uint64(2), c.ob.position())

	// Nobody takes: cut off as a slow consumer.
	c = conn(time.Millisecond)
	require.False(t, c.offerWait(second, nil))
	require.ErrorIs(t, c.err, edge.ErrSlowConsumer)

	// The connection ends while it waits.
	c = conn(time.Hour)
	c.cancel()
	require.False(t, c.offerWait(second, nil))
	require.NoError(t, c.err)
}
