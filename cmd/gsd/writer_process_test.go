package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gsd-dev/gsd/client"
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
