package play

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/stretchr/testify/require"
)

// send queues a control message: a message its codec cannot encode ends
// the connection with an internal error; with the queue full it waits for
// room up to SlowTimeout, then cuts the client off, and gives up when the
// connection ends.
func TestSendWaitsForRoomThenCutsOffOrGivesUp(t *testing.T) {
	conn := func(slow time.Duration) *playConn {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		return &playConn{cfg: Config{SlowTimeout: slow, QueueSize: 1}, ob: newOutbox(1, codecJSON), codec: codecJSON,
			out: make(chan []byte, 1), ctx: ctx, cancel: cancel}
	}

	c := conn(time.Hour)
	require.False(t, c.send(math.NaN()), "JSON has no NaN")
	require.ErrorIs(t, c.err, edge.ErrInternal)

	// The queue is full; the writer takes while send waits.
	c = conn(time.Hour)
	require.True(t, c.send("first"))
	done := make(chan bool, 1)
	go func() { done <- c.send("second") }()
	var ok bool
	for waiting := true; waiting; {
		select {
		case ok = <-done:
			waiting = false
		case <-time.After(time.Millisecond): // it waits (most likely by now): the writer takes
			select {
			case <-c.out:
			default:
			}
		}
	}
	require.True(t, ok)
	require.Equal(t, `"second"`, string(<-c.out))

	// Nobody takes: cut off as a slow consumer.
	c = conn(time.Millisecond)
	require.True(t, c.send("first"))
	require.False(t, c.send("second"))
	require.ErrorIs(t, c.err, edge.ErrSlowConsumer)

	// The connection ends while it waits.
	c = conn(time.Hour)
	require.True(t, c.send("first"))
	c.cancel()
	require.False(t, c.send("second"))
	require.NoError(t, c.err)
}
