package main

import (
	"context"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/store"
)

// movedArchiveInterval is how often a node with a shard map copies the
// events before the fence of worlds moved to a group it runs into that
// group's archive here: from its replica of the old group, else from a
// node of the new group that has them (issue 14;
// shard.Backend.RunMovedArchives). A subscription from before a move
// answers archive_gap at the new home until then.
const movedArchiveInterval = 5 * time.Second

// movedArchiveRunner is the shard backend's copy loop.
type movedArchiveRunner interface {
	RunMovedArchives(ctx context.Context, peers store.RefillPeers, interval time.Duration)
}

// startMovedArchives runs b's copy of moved worlds' events, from the
// node's replica of a world's old group or from the new group's other
// nodes through peers, until the returned stop is called (a no-op for a
// backend without one, a node without a shard map; idempotent).
func startMovedArchives(b edge.Backend, peers store.RefillPeers) func() {
	r, ok := b.(movedArchiveRunner)
	if !ok {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.RunMovedArchives(ctx, peers, movedArchiveInterval)
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}
