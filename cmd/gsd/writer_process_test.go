package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// arenaWriter is the sink process tests' one writer to "arena": each
// action retried with its seq until acknowledged, counted in acked. stop
// ends it and waits for it (also at the test's end, when a check failed
// first).
func arenaWriter(t *testing.T, ctx context.Context, cl *client.Client) (acked *atomic.Int64, stop func()) {
	acked = new(atomic.Int64)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(1); ; seq++ {
			for {
				select {
				case <-quit:
					return
				default:
				}
				if _, err := cl.Act(ctx, "arena", incr("p1", seq, "e1", 1)); err == nil {
					acked.Add(1)
					break
				}
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() { close(quit) })
		<-done
	}
	t.Cleanup(stop)
	return acked, stop
}

// arenaEvents reads "arena"'s events 1..head as the cluster serves them.
func arenaEvents(t *testing.T, ctx context.Context, cl *client.Client, head uint64) []wire.Event {
	t.Helper()
	var events []wire.Event
	errDone := errors.New("done")
	require.ErrorIs(t, cl.Follow(ctx, "arena", 1, func(ev wire.Event) error {
		events = append(events, ev)
		if ev.Seq >= head {
			return errDone
		}
		return nil
	}), errDone)
	return events
}
