package feed

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// Sentinel errors of a Follower's sessions. A session that fails with one
// of them is retried after a backoff like any other failure; sinks tell
// them apart to log and count them.
var (
	// ErrNotLeading ends a session when this node stopped leading the
	// world's group between two of the follower's checks.
	ErrNotLeading = errors.New("gsd/feed: not leading the world's group")
	// ErrFeedOrder reports events that do not follow the position (a feed
	// out of order; never expected).
	ErrFeedOrder = errors.New("gsd/feed: feed out of order")
	// ErrNewIncarnation ends a session when the world was deleted and
	// created again under its name while the session followed it: the
	// next session starts the new incarnation from seq 1.
	ErrNewIncarnation = errors.New("gsd/feed: the world has a new incarnation")
)

// Position is where a sink stands in one world: every event of the
// world's incarnation Incarnation up to Seq is delivered.
type Position struct {
	// Incarnation names the world's incarnation (docs/EVENTS.md,
	// "Incarnation"): a world deleted and created again under its name
	// is a new incarnation whose seqs start over at 1. It is the Raft log
	// index of the world's creation (fsm.WorldInfo.Incarnation, > 0),
	// the number GET /v1/worlds and the play welcome show; for a world
	// this node knows as created before incarnations (0 in the fsm) it is
	// the leader time (unix nanoseconds) of the world's event 1, negated
	// (< 0), so that it never equals a creation index. 0 means unknown:
	// a position stored before the sinks recorded incarnations, or a
	// world from before incarnations with no event held here.
	Incarnation int64
	Seq         uint64
}

// Incarnation returns the incarnation of world that src holds now (see
// Position.Incarnation); false when src does not hold the world, or holds
// it from before incarnations without its event 1 (pruned, or no event
// yet).
func Incarnation(src Source, world string) (int64, bool) {
	info, err := src.World(world)
	if err != nil {
		return 0, false
	}
	return incarnationOf(src, info)
}

// incarnationOf returns the incarnation of the world info describes.
func incarnationOf(src Source, info fsm.WorldInfo) (int64, bool) {
	if info.Incarnation > 0 {
		if info.Incarnation > math.MaxInt64 {
			return 0, false // not a Raft index: unknown rather than wrapped
		}
		return int64(info.Incarnation), true
	}
	ev, ok := src.Event(info.ID, 1)
	if !ok {
		return 0, false
	}
	return FirstEventIncarnation(ev.Time)
}

// FirstEventIncarnation returns the incarnation of a world from before
// incarnations whose event 1 has leader time t: -t, which no creation
// index equals (false for a time not after 1970, which would).
func FirstEventIncarnation(t int64) (int64, bool) {
	if t <= 0 {
		return 0, false
	}
	return -t, true
}

// Target is what one sink does for one world that is its own: where it
// stands, and how it delivers. A Follower calls a Target from one
// goroutine at a time.
type Target interface {
	// Positions returns the positions the sink stored for the world, the
	// newest first (none: nothing delivered yet).
	Positions(ctx context.Context) ([]Position, error)
	// Resume tells the target the position a session goes on from (a
	// zero Position: the world's event 1, once read, names the
	// incarnation).
	Resume(ctx context.Context, pos Position) error
	// Deliver delivers evs, the events that follow pos in seq order (of
	// pos's incarnation, at most the follower's batch size), and stores
	// the new position once the sink has them for good; it returns the
	// position after evs, or an error when they were not delivered.
	Deliver(ctx context.Context, pos Position, evs []*fsm.Event) (Position, error)
}

// Verifier is a Target that can check a stored position against the
// event at its seq (sink/pg stores each event's Raft index and time): a
// Follower asks it before resuming a stored position of the incarnation
// it holds (a cluster rebuilt from empty data dirs against the same
// database creates its worlds at the same indexes as the old one), and
// before trusting the newest stored position of a world whose
// incarnation it cannot read.
type Verifier interface {
	Verify(ctx context.Context, pos Position, ev *fsm.Event) error
}

// Flusher is a Target that holds delivered events before it stores them
// (sink/files: an open file) and must flush them by a deadline even when
// the world is quiet.
type Flusher interface {
	// FlushAt returns when the held events must be flushed (false: none
	// held).
	FlushAt() (time.Time, bool)
	// Flush stores the held events.
	Flush(ctx context.Context) error
}

// Ender is a Target told when a session ends and why (ctx's error when
// the follower stops it); an error it returns joins the session's.
type Ender interface {
	End(cause error) error
}

// Hooks are what a sink hangs off a Follower: the per-world Target and
// its metrics and logs.
type Hooks[T Target] struct {
	// Start returns the world's Target when this node starts following
	// it (required).
	Start func(world string) T
	// Fail is told each failed session before the backoff (required):
	// the sink logs and counts it. retryIn bounds the wait.
	Fail func(world string, t T, err error, retryIn time.Duration)
	// Check is called on each of the follower's checks for every world
	// it follows, with the node's view of the world (lag metrics).
	Check func(world string, t T, info fsm.WorldInfo)
	// Stop is called when this node stops following the world.
	Stop func(world string, t T)
	// Followed is told how many worlds this node follows after each
	// check.
	Followed func(n int)
	// Checked is told after each check the worlds this node follows or
	// is still ending a session of, each with the incarnation its
	// session follows (0: not known yet): what the sink must keep of
	// its positions (Replicated.Prune). It runs on the follower's
	// goroutine, so no world starts meanwhile.
	Checked func(ctx context.Context, following map[string]int64)
}
