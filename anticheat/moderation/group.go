package moderation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// Group is what records and reviews run on: World's Raft group, on its
// leader (the edge's Group is one).
type Group interface {
	Act(ctx context.Context, a *fsm.Action) (ev *fsm.Event, dup bool, err error)
	CreateWorld(ctx context.Context, id string, rules fsm.Rules) error
}

// Worlds is this node's view of its worlds (the store's, the edge's
// Backend).
type Worlds interface {
	World(id string) (fsm.WorldInfo, error)
}

// Raise records r on g as writer's action seq, creating World first when
// it does not exist; ws is the view of g's node (its leader), so the
// world checked is the one written. It reports whether the record is new:
// false when a record of the same suspicion (ID) was there already, which
// then stays as it is. A World of other rules (CheckWorld) gets nothing.
func Raise(ctx context.Context, g Group, ws Worlds, r Record, writer string, seq uint64) (bool, error) {
	a, err := RaiseAction(r, writer, seq)
	if err != nil {
		return false, err
	}
	wi, err := ws.World(World)
	if errors.Is(err, fsm.ErrUnknownWorld) {
		if err = g.CreateWorld(ctx, World, Rules()); err == nil || errors.Is(err, fsm.ErrWorldExists) {
			wi, err = ws.World(World)
		}
	}
	if err == nil {
		err = CheckWorld(wi)
	}
	var ev *fsm.Event
	if err == nil {
		ev, _, err = g.Act(ctx, a)
	}
	if err != nil {
		return false, fmt.Errorf("record flag %s: %w", a.Ops[0].Entity, err)
	}
	switch ev.Status {
	case fsm.StatusApplied:
		return true, nil
	case fsm.StatusConflict:
		return false, nil
	}
	return false, fmt.Errorf("%w: record flag %s: rejected: %s", ErrInvalid, a.Ops[0].Entity, ev.Reason)
}

// ApplyReview applies op to r (as read from World) on g as writer's action
// seq and returns the review it committed. A review committed since r was
// read is ErrRace; a World of other rules (CheckWorld, on ws, the view of
// g's node) gets nothing.
func ApplyReview(ctx context.Context, g Group, ws Worlds, r Record, op, by, reason string, at time.Time, writer string, seq uint64) (Review, error) {
	a, rv, err := ReviewAction(r, op, by, reason, at, writer, seq)
	if err != nil {
		return Review{}, err
	}
	wi, err := ws.World(World)
	if err == nil {
		err = CheckWorld(wi)
	}
	var ev *fsm.Event
	if err == nil {
		ev, _, err = g.Act(ctx, a)
	}
	if err != nil {
		return Review{}, fmt.Errorf("%s flag %s: %w", op, r.ID, err)
	}
	switch ev.Status {
	case fsm.StatusApplied:
		return rv, nil
	case fsm.StatusConflict:
		return Review{}, fmt.Errorf("%w: %s flag %s", ErrRace, op, r.ID)
	}
	return Review{}, fmt.Errorf("%w: %s flag %s: rejected: %s", ErrInvalid, op, r.ID, ev.Reason)
}

// Seqs hands out the action seqs of one writer: rising, and started from
// the clock (milliseconds) so that a restarted writer starts past the
// seqs it used before, within the log's idempotency window (1,024 seqs)
// of them. Two writes never share a seq in one process; a clash with an
// earlier process's seq is a seq_reused answer, and the writer retries
// with the next seq (records and reviews are safe to repeat: see Raise,
// ApplyReview).
type Seqs struct {
	mu   sync.Mutex
	last uint64
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Next returns the next seq.
func (s *Seqs) Next() uint64 {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = max(s.last+1, uint64(max(now().UnixMilli(), 1)))
	return s.last
}
