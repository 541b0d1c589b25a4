package fsm

import (
	"fmt"
	"time"
)

// Session expiry. A session that ends without a bye (the client vanished,
// its node crashed) would otherwise live in its world forever. A
// CmdSessionExpire command names a world and an idle time After; applying
// it at leader time now closes every session of the world whose last
// command (open, ack, resume, data, kick: its seen time) is more than
// After before now. The decision is made here, on the batch's leader time,
// so every replica closes the same sessions; the command carries After, so
// a node flag that differs between nodes changes only which value the
// current leader proposes, never what replicas agree on. A session's
// player data and bans stay: they belong to the player, not the session.
//
// Who proposes it is the daemon's business (the leader, periodically, for
// worlds it sees holding idle sessions); the FSM decides nothing on its
// own clock.

// MaxSessionExpiry bounds SessionExpiry.After: beyond it a session
// effectively never expires, and a bound keeps now-After from overflowing.
const MaxSessionExpiry = 10 * 365 * 24 * time.Hour

// SessionExpiry is the payload of CmdSessionExpire.
type SessionExpiry struct {
	World string
	// After is the idle time, in nanoseconds, beyond which a session
	// closes: 1..MaxSessionExpiry.
	After int64
}

// Validate checks the payload's shape; it does not look at state.
func (c *SessionExpiry) Validate() error {
	if err := checkName("world", c.World); err != nil {
		return err
	}
	if c.After <= 0 || c.After > int64(MaxSessionExpiry) {
		return fmt.Errorf("%w: session expiry must be 1ns..%s, got %dns", ErrMalformed, MaxSessionExpiry, c.After)
	}
	return nil
}

// applyExpire closes, at leader time now, the sessions of c.World idle for
// longer than c.After; Result.Expired lists them, sorted by id.
func (f *FSM) applyExpire(now int64, c *SessionExpiry) Result {
	if err := c.Validate(); err != nil {
		return Result{Err: err}
	}
	w, err := f.writable(c.World)
	if err != nil {
		return Result{Err: err}
	}
	// A session seen after now (a new leader whose clock is behind) is
	// not idle: now-seen is negative.
	cutoff := now - c.After
	var expired []SessionInfo
	for _, id := range sortedKeys(w.sessions) {
		if s := w.sessions[id]; s.seen < cutoff {
			expired = append(expired, s.info(w))
			w.dropSession(s)
		}
	}
	if len(expired) > 0 {
		w.recordHash(f.cfg.HashHistory)
	}
	return Result{Expired: expired}
}

// IdleSessions reports whether a world holds a session whose last command
// is more than after before now, by the given clock: the leader's cheap
// test before it proposes a CmdSessionExpire, which decides again on the
// leader time it commits with. False for a world that does not exist or
// is fenced (its writes, expiry too, are refused: migrate.go).
func (f *FSM) IdleSessions(worldID string, now time.Time, after time.Duration) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil || w.moved != nil {
		return false
	}
	cutoff := now.UnixNano() - int64(after)
	for _, s := range w.sessions {
		if s.seen < cutoff {
			return true
		}
	}
	return false
}

// encoding (in batches)

func (e *encoder) sessionExpiry(c *SessionExpiry) {
	e.str(c.World)
	e.varint(c.After)
}

func (d *decoder) sessionExpiry() *SessionExpiry {
	return &SessionExpiry{World: d.str(), After: d.varint()}
}
