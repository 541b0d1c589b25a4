package fsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/wire"
)

// World lifecycle (issue 14): incarnations, delete, capacity and idle
// expiry.
//
// Incarnation. A world's incarnation is the log index of the command that
// created it: every replica applies that command at the same index, so all
// agree without a clock or randomness, and a world deleted and created
// again under the same id gets a larger one. Its seqs start over at 1, so
// (world, incarnation, seq) names an event for good, where (world, seq)
// would name two. The incarnation is not in the state hash: replicas
// restored from a snapshot older than format 6 know it as 0 ("from before
// incarnations"), and their hashes must still match the others'.
//
// Delete. CmdDeleteWorld (log version 6) removes the world and everything
// keyed by it in the state: entities, idempotency windows, sessions, bans,
// player data, hash history and checkpoint marks. Later commands for it
// answer ErrUnknownWorld until it is created again. What lives beside the
// state (the event archive, connections) hangs off Result.Deleted.
//
// Capacity. The rules key capacity bounds a world's sessions: an open
// beyond it is refused with ErrWorldFull, in log order on every replica
// (a player's second open replaces its session and never counts twice).
//
// Idle expiry. The rules key idle_expiry lets the leader propose a delete
// on the condition that the world is idle: no session and no action or
// creation for longer than IdleAfter before the batch's leader time. The
// condition is decided here, on the leader time the delete commits with,
// so a world that became active between proposal and commit stays.

// Lifecycle errors; Code maps them like the others.
var (
	// ErrWorldFull reports a session open beyond the world's capacity.
	ErrWorldFull = errors.New("gsd/fsm: world full")
	// ErrWorldActive reports a conditional delete of a world that is not idle.
	ErrWorldActive = errors.New("gsd/fsm: world active")
)

// Lifecycle codes.
const (
	CodeWorldFull   = wire.CodeWorldFull
	CodeWorldActive = wire.CodeWorldActive
)

// MaxIdleExpiry bounds WorldDelete.IdleAfter and the rules key idle_expiry,
// so that now-IdleAfter cannot overflow.
const MaxIdleExpiry = MaxSessionExpiry

// WorldDelete is the payload of CmdDeleteWorld.
type WorldDelete struct {
	World string
	// Incarnation, when not 0, must be the world's: a delete meant for an
	// earlier incarnation leaves a re-created world alone.
	Incarnation uint64
	// IdleAfter, when not 0, deletes the world only if it is idle: no
	// session, and no action or creation for longer than IdleAfter
	// nanoseconds before the batch's leader time (1..MaxIdleExpiry).
	IdleAfter int64
}

// Validate checks the payload's shape; it does not look at state.
func (c *WorldDelete) Validate() error {
	if err := checkName("world", c.World); err != nil {
		return err
	}
	if c.IdleAfter < 0 || c.IdleAfter > int64(MaxIdleExpiry) {
		return fmt.Errorf("%w: idle time must be 0..%s, got %dns", ErrMalformed, MaxIdleExpiry, c.IdleAfter)
	}
	return nil
}

// deleteWorld removes c.World at leader time now; Result.Deleted is the
// world as it was.
func (f *FSM) deleteWorld(now int64, c *WorldDelete) Result {
	if err := c.Validate(); err != nil {
		return Result{Err: err}
	}
	w := f.worlds[c.World]
	if w == nil {
		return Result{Err: fmt.Errorf("%w: %s", ErrUnknownWorld, c.World)}
	}
	if c.Incarnation != 0 && c.Incarnation != w.incarnation {
		return Result{Err: fmt.Errorf("%w: %s incarnation %d (it is %d now)", ErrUnknownWorld, c.World, c.Incarnation, w.incarnation)}
	}
	if c.IdleAfter != 0 && !w.idle(now, c.IdleAfter) {
		return Result{Err: fmt.Errorf("%w: %s was active within %s", ErrWorldActive, c.World, time.Duration(c.IdleAfter))}
	}
	info := w.info()
	delete(f.worlds, c.World)
	delete(f.marks, c.World)
	f.publishView()
	return Result{Deleted: &info}
}

// idle reports whether w has no session and no action or creation within
// after before now. A world whose last activity is unknown (restored from
// a snapshot older than format 6, no action since) is not idle: it may
// have been active just before.
func (w *world) idle(now, after int64) bool {
	last := max(w.created, w.clock)
	return len(w.sessions) == 0 && last != 0 && last < now-after
}

// full reports whether a session open by player would exceed w's capacity.
func (w *world) full(player string) bool {
	c := w.rules.Schema.Capacity
	if c <= 0 {
		return false
	}
	n := len(w.sessions)
	if w.playerSession(player) != nil {
		n-- // the open replaces it
	}
	return n >= c
}

// IdleWorlds returns, sorted by world, a conditional delete for each world
// whose rules set idle_expiry and that is idle at now by the given clock:
// the leader's cheap test before it proposes them, which the FSM decides
// again on the leader time they commit with.
func (f *FSM) IdleWorlds(now time.Time) []WorldDelete {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []WorldDelete
	for _, id := range sortedKeys(f.worlds) {
		w := f.worlds[id]
		after := int64(w.rules.Schema.IdleExpiry)
		if after > 0 && w.idle(now.UnixNano(), after) {
			out = append(out, WorldDelete{World: id, Incarnation: w.incarnation, IdleAfter: after})
		}
	}
	return out
}

// encoding (in batches)

func (e *encoder) worldDelete(c *WorldDelete) {
	e.str(c.World)
	e.uvarint(c.Incarnation)
	e.varint(c.IdleAfter)
}

func (d *decoder) worldDelete() *WorldDelete {
	return &WorldDelete{World: d.str(), Incarnation: d.uvarint(), IdleAfter: d.varint()}
}
