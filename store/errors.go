package store

import "errors"

// Sentinel errors of the store; api maps them to HTTP answers in one place.
var (
	// ErrNotLeader reports that this node is not the leader and nothing was proposed.
	ErrNotLeader = errors.New("gsd/store: not the leader")
	// ErrOutcomeUnknown reports a proposal whose fate is unknown (leadership
	// lost, timeout, shutdown after proposing): retry with the same seq.
	ErrOutcomeUnknown = errors.New("gsd/store: outcome unknown, retry with the same seq")
	// ErrArchiveGap reports a subscription position older than what this node holds.
	ErrArchiveGap = errors.New("gsd/store: events before this position are not held here")
	// ErrClosed reports use of a closed store.
	ErrClosed = errors.New("gsd/store: closed")
	// ErrOverloaded reports that the batcher's queue is full.
	ErrOverloaded = errors.New("gsd/store: overloaded, retry later")
	// ErrVersionGate reports a command that some member's binary (voter
	// or not) does not read, or a new member that does not read what the
	// group's members read: nothing was proposed or added (versions.go).
	ErrVersionGate = errors.New("gsd/store: not supported by every member")
)
