package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/spf13/pflag"
)

// Idle world expiry (issue 14): a world rule, idle_expiry; this node flag
// only says how often the leader looks. The leader proposes a delete on
// the condition that the world is still idle for longer than its rule on
// the leader time the delete commits with (fsm/lifecycle.go), so a world
// that became active meanwhile stays and replicas agree whatever each
// node's clock says.

// worldExpiryOptions are the idle world expiry's flags.
type worldExpiryOptions struct {
	every time.Duration
}

func (e *worldExpiryOptions) flags(f *pflag.FlagSet) {
	f.DurationVar(&e.every, "world-expiry-check", 30*time.Second, "how often the leader looks for worlds idle for longer than their rules' idle_expiry and deletes them (0: never)")
}

func (e *worldExpiryOptions) check() error {
	if e.every < 0 || e.every > time.Hour {
		return fmt.Errorf("--world-expiry-check must be 0 (off) or up to 1h, got %s", e.every)
	}
	return nil
}

// worldExpirer is what the loop needs of a store.
type worldExpirer interface {
	IsLeader() bool
	ExpireIdleWorlds(ctx context.Context) ([]fsm.WorldInfo, error)
}

// worldExpirers returns the stores of every group the node runs: each
// group's leader expires that group's worlds.
func (g *shardGroups) worldExpirers() []worldExpirer {
	var out []worldExpirer
	for _, id := range g.mgr.Groups() {
		if st, ok := g.mgr.Group(id); ok {
			out = append(out, st)
		}
	}
	return out
}

// start runs the loop over the stores that stores returns (the node's
// groups) until the returned stop is called (a no-op when off;
// idempotent).
func (e *worldExpiryOptions) start(stores func() []worldExpirer, log *slog.Logger) (stop func()) {
	if e.every == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tick := time.NewTicker(e.every)
	go func() {
		defer close(done)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				for _, st := range stores() {
					expireWorldsOnce(ctx, st, log)
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// expireWorldsOnce deletes, when st leads, the worlds idle for longer than
// their rules say, and returns how many went.
func expireWorldsOnce(ctx context.Context, st worldExpirer, log *slog.Logger) int {
	if !st.IsLeader() {
		return 0
	}
	gone, err := st.ExpireIdleWorlds(ctx)
	switch {
	case errors.Is(err, store.ErrVersionGate):
		log.Debug("idle world expiry waits for every voter to read it", "err", err)
	case err != nil:
		log.Warn("idle world expiry failed", "err", err)
	}
	for _, w := range gone {
		log.Info("idle world deleted", "world", w.ID, "incarnation", w.Incarnation, "seq", w.Seq)
	}
	return len(gone)
}
