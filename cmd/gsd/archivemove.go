package main

import (
	"context"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
)

// movedArchiveInterval is how often a node with a shard map copies the
// events before the fence of worlds moved between two groups it runs to
// the new home's archive (issue 14; shard.Backend.RunMovedArchives): a
// subscription from before a move answers archive_gap at the new home
// until then.
const movedArchiveInterval = 5 * time.Second

// movedArchiveRunner is the shard backend's copy loop.
type movedArchiveRunner interface {
	RunMovedArchives(ctx context.Context, interval time.Duration)
}

// startMovedArchives runs b's copy of moved worlds' events until the
// returned stop is called (a no-op for a backend without one;
// idempotent).
func startMovedArchives(b edge.Backend) func() {
	r, ok := b.(movedArchiveRunner)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.RunMovedArchives(ctx, movedArchiveInterval)
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}
