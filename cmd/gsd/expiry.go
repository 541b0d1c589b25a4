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

// Session expiry (issue 16): a node flag, not a world rule. The leader
// proposes fsm.CmdSessionExpire carrying the expiry for each world it sees
// holding an idle session; the FSM decides which sessions close on the
// leader time the command commits with, so replicas agree whatever each
// node's flag says (the flag of the node that leads is the one in force:
// give every node the same value).

// expiryOptions are the session expiry's flags.
type expiryOptions struct {
	after time.Duration
}

func (e *expiryOptions) flags(f *pflag.FlagSet) {
	f.DurationVar(&e.after, "session-expiry", 0, "close play sessions with no command (ack, resume, data) for longer than this, decided in the replicated state on leader time; connected clients are kept alive every third of it; every node should use the same value (0: sessions without a bye never expire)")
}

func (e *expiryOptions) check() error {
	if e.after < 0 || e.after > fsm.MaxSessionExpiry {
		return fmt.Errorf("--session-expiry must be 0 (off) or up to %s, got %s", fsm.MaxSessionExpiry, e.after)
	}
	return nil
}

// interval is how often the leader looks for idle sessions: a quarter of
// the expiry, within [1s, 1m], so a session closes at most that late.
func (e *expiryOptions) interval() time.Duration {
	return min(max(e.after/4, time.Second), time.Minute)
}

// keepalive is how often a node refreshes the sessions of its connected
// but quiet play clients (api/play Config.SessionKeepalive): a third of the
// expiry, so a connected player's session is never the idle one; 0 when
// expiry is off.
func (e *expiryOptions) keepalive() time.Duration { return e.after / 3 }

// sessionExpirer is what the expiry loop needs of a store.
type sessionExpirer interface {
	IsLeader() bool
	Worlds() []fsm.WorldInfo
	IdleSessions(world string, after time.Duration) bool
	ExpireSessions(ctx context.Context, world string, after time.Duration) ([]fsm.SessionInfo, error)
}

// start runs the expiry loop over st until the returned stop is called (a
// no-op when expiry is off; idempotent).
func (e *expiryOptions) start(st sessionExpirer, log *slog.Logger) (stop func()) {
	if e.after == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tick := time.NewTicker(e.interval())
	go func() {
		defer close(done)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				expireOnce(ctx, st, e.after, log)
			}
		}
	}()
	log.Info("session expiry on", "after", e.after, "check_every", e.interval())
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// expireOnce proposes, when st leads, one expiry per world that holds an
// idle session, and returns how many sessions closed.
func expireOnce(ctx context.Context, st sessionExpirer, after time.Duration, log *slog.Logger) int {
	if !st.IsLeader() {
		return 0
	}
	n := 0
	for _, w := range st.Worlds() {
		if !st.IdleSessions(w.ID, after) {
			continue
		}
		closed, err := st.ExpireSessions(ctx, w.ID, after)
		switch {
		case errors.Is(err, store.ErrVersionGate):
			log.Debug("session expiry waits for every voter to read it", "world", w.ID, "err", err)
			return n
		case err != nil:
			log.Warn("session expiry failed", "world", w.ID, "err", err)
			continue
		}
		for _, s := range closed {
			log.Info("session expired", "world", w.ID, "session", s.ID, "player", s.Player, "idle_since", time.Unix(0, s.Seen).UTC())
		}
		n += len(closed)
	}
	return n
}
