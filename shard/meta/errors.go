package meta

import "errors"

// Sentinel errors of package meta, checked with errors.Is.
var (
	// ErrBadCommand: a command or snapshot does not decode, or its fields
	// are invalid.
	ErrBadCommand = errors.New("gsd/meta: bad command")
	// ErrRefused: a valid command that the current state refuses (an
	// unknown node or shard, a shard that still holds worlds, ...).
	ErrRefused = errors.New("gsd/meta: refused")
	// ErrNotFound: a refused command named a node or shard the map does
	// not hold (it wraps ErrRefused too).
	ErrNotFound = errors.New("gsd/meta: no such node or shard")
	// ErrNotLeader: this node does not lead the meta group and cannot
	// forward the proposal.
	ErrNotLeader = errors.New("gsd/meta: not the meta group's leader")
	// ErrElsewhere: a conditional assign_world (Command.Expect) refused
	// because the world is not on the expected shard (it wraps ErrRefused
	// too).
	ErrElsewhere = errors.New("gsd/meta: the world is not on the expected shard")
	// ErrGate: a command that some member of the meta group would not
	// decode (its binary is older), so the leader does not propose it.
	ErrGate = errors.New("gsd/meta: not read by every meta member")
	// ErrBehind: the meta leader applied a proposal, but this node's
	// replica of the meta group did not apply it in time, so this node
	// would not route by it yet. Repeating the proposal is safe.
	ErrBehind = errors.New("gsd/meta: this node's meta replica is behind")
)
