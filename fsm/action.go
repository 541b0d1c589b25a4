package fsm

import (
	"fmt"
	"unicode/utf8"

	"github.com/gsd-dev/gsd/wire"
)

// Limits on one action; the api rejects bigger input before commit and the
// FSM rejects it again, so a buggy edge cannot bloat the state.
const (
	MaxOpsPerAction = wire.MaxOpsPerAction
	MaxNameLen      = wire.MaxNameLen
	MaxStringLen    = wire.MaxStringLen
)

// OpKind is the kind of one op.
type OpKind = wire.OpKind

// The ops.
const (
	OpSet    = wire.OpSet
	OpIncr   = wire.OpIncr
	OpAdd    = wire.OpAdd
	OpRemove = wire.OpRemove
	OpDelete = wire.OpDelete
)

// ExpectMode says what an op expects of its field before the action.
type ExpectMode = wire.ExpectMode

// The expect modes: none, the field must not exist ("*"), or the field's
// version must equal Version ("N").
const (
	ExpectNone    = wire.ExpectNone
	ExpectAbsent  = wire.ExpectAbsent
	ExpectVersion = wire.ExpectVersion
)

// Expect is an op's optimistic-concurrency precondition.
type Expect = wire.Expect

// Priority is an action's lane in the batcher and the feed.
type Priority = wire.Priority

// The priorities. Critical is the zero value: an action is critical unless it
// says it is bulk.
const (
	PriorityCritical = wire.PriorityCritical
	PriorityBulk     = wire.PriorityBulk
)

// Op is one change inside an action.
type Op = wire.Op

// Action is what a player asks for. All its ops apply, or none. It carries
// either raw Ops or a declared action: Name, one of the world's rules'
// actions, and its Params, sorted by name; Apply expands it into ops
// (authority.go). Role is the caller's role from its token ("" when the
// edge had none: not restricted); Apply checks it, so it is in the log.
type Action struct {
	World     string
	Player    string
	Seq       uint64 // client seq; with World and Player the idempotency key
	InputTime int64  // optional client input time, unix nanoseconds
	Priority  Priority
	Ops       []Op
	Name      string  // a declared action (log version 3)
	Params    []Param // its params, sorted by name, unique
	Role      string  // the caller's role (log version 3)
}

// Validate checks the action's shape: names, op kinds, sizes. It does not
// look at world state.
func (a *Action) Validate() error {
	if err := checkName("world", a.World); err != nil {
		return err
	}
	if err := checkName("player", a.Player); err != nil {
		return err
	}
	if a.Seq == 0 {
		return fmt.Errorf("%w: seq must be > 0", ErrMalformed)
	}
	if a.Priority > PriorityBulk {
		return fmt.Errorf("%w: unknown priority", ErrMalformed)
	}
	if a.Role != "" {
		if err := checkName("role", a.Role); err != nil {
			return err
		}
	}
	if a.Name != "" || len(a.Params) > 0 {
		return a.validateDeclared()
	}
	if len(a.Ops) == 0 {
		return fmt.Errorf("%w: an action needs at least one op", ErrMalformed)
	}
	if len(a.Ops) > MaxOpsPerAction {
		return fmt.Errorf("%w: more than %d ops", ErrMalformed, MaxOpsPerAction)
	}
	for i := range a.Ops {
		if err := validateOp(&a.Ops[i]); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	return nil
}

// validateDeclared checks a declared action's shape: a name, no raw ops,
// params sorted by unique name with values the codec carries.
func (a *Action) validateDeclared() error {
	if err := checkName("action", a.Name); err != nil {
		return err
	}
	if len(a.Ops) > 0 {
		return fmt.Errorf("%w: a declared action carries params, not ops", ErrMalformed)
	}
	if len(a.Params) > maxSchemaItems {
		return fmt.Errorf("%w: more than %d params", ErrMalformed, maxSchemaItems)
	}
	for i, p := range a.Params {
		if err := checkName("param", p.Name); err != nil {
			return err
		}
		if i > 0 && a.Params[i-1].Name >= p.Name {
			return fmt.Errorf("%w: params must be sorted by unique name", ErrMalformed)
		}
		if !p.Value.Valid() || p.Value.Kind == KindNull || len(p.Value.Str) > MaxStringLen {
			return fmt.Errorf("%w: param %s: bad value", ErrMalformed, p.Name)
		}
	}
	return nil
}

func validateOp(o *Op) error {
	if err := checkName("entity", o.Entity); err != nil {
		return err
	}
	if o.Expect.Mode > ExpectVersion {
		return fmt.Errorf("%w: bad expect", ErrMalformed)
	}
	// Every op carries its Value in the log entry, used or not: one the
	// codec cannot carry would make every replica fail to decode the entry.
	if !o.Value.Valid() {
		return fmt.Errorf("%w: bad value (kind, bool or non-finite float)", ErrMalformed)
	}
	if len(o.Value.Str) > MaxStringLen {
		return fmt.Errorf("%w: string longer than %d bytes", ErrMalformed, MaxStringLen)
	}
	switch o.Kind {
	case OpDelete:
		if o.Field != "" {
			return fmt.Errorf("%w: delete takes no field", ErrMalformed)
		}
		return nil
	case OpSet, OpAdd, OpRemove:
		if o.Value.Kind == KindNull {
			return fmt.Errorf("%w: %s needs a value", ErrMalformed, o.Kind)
		}
	case OpIncr:
	default:
		return fmt.Errorf("%w: unknown op", ErrMalformed)
	}
	return checkName("field", o.Field)
}

func checkName(what, s string) error {
	if s == "" || len(s) > MaxNameLen || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s name must be 1..%d bytes of UTF-8", ErrMalformed, what, MaxNameLen)
	}
	return nil
}

// CmdKind is the kind of a replicated command.
type CmdKind uint8

// The command kinds carried in a Batch.
const (
	CmdAction CmdKind = iota + 1
	CmdCreateWorld
	CmdPutNode
	CmdRemoveNode
	CmdSessionOpen
	CmdSessionAck
	CmdSessionResume
	CmdSessionClose
	CmdSessionData
	CmdSessionKick
	CmdSessionBan
	CmdSessionUnban
	CmdSessionImport
	CmdSessionAcks
	CmdNodeVersions  // log version 2: a node's supported versions
	CmdUpdateRules   // log version 2: replaces a world's rules
	CmdSessionExpire // log version 4: closes a world's idle sessions
	CmdCheckpoint    // log version 5: the leader's state hash of a world at a seq
	CmdDeleteWorld   // log version 6: removes a world and everything keyed by it
	CmdMoveWorld     // log version 8: fences a world that moves to another shard
	CmdImportWorld   // log version 8: installs a world exported by another group
	CmdDivergence    // log version 9: records a replica's checkpoint mismatch as a world event
	// CmdUpdateRulesEvent (log version 12) is CmdUpdateRules that also
	// records the update as the world's event (rules_update.go).
	CmdUpdateRulesEvent
	// CmdCreateWorldSalted (log version 13) is CmdCreateWorld of a world
	// whose audit leaves are version 2, salted per player (salt.go).
	CmdCreateWorldSalted
	CmdSalt      // log version 13: a player's audit salt in a salted world
	CmdEraseSalt // log version 13: deletes a player's audit salt
	// CmdEraseSaltKeep (log version 14) is CmdEraseSalt that keeps the
	// erased salt's digest and the seqs it salted (salt_erased.go).
	CmdEraseSaltKeep
	// CmdMoveWorldSalted (log version 15) is CmdMoveWorld that may also
	// fence a salted world (migrate.go), whose export is of format 2.
	CmdMoveWorldSalted
	// CmdImportWorldBack (log version 17) is CmdImportWorld that may also
	// replace the world's fenced copy of the same incarnation, fenced at
	// or before the export's seq: a move back to a shard the world left
	// (migrate.go).
	CmdImportWorldBack
)

// WorldSpec creates a world. Origin names the replica (the shard's region)
// whose id the world's CRDT fields use for local writes.
type WorldSpec struct {
	ID     string
	Origin string
	Rules  Rules
	// Salted makes the world's audit leaves version 2, with a salt per
	// player (salt.go); its command is CmdCreateWorldSalted.
	Salted bool
}

// NodeInfo is a cluster member's addresses, replicated so that any node can
// forward to the leader's HTTP address and resolve peers' Raft addresses
// (wire.NodeInfo: a join sends it).
type NodeInfo = wire.NodeInfo

// Command is one replicated command; exactly one pointer is set, by Kind.
type Command struct {
	Kind    CmdKind
	Action  *Action
	World   *WorldSpec
	Node    *NodeInfo      // CmdPutNode, and CmdRemoveNode (ID only)
	Session *SessionCmd    // CmdSession* but CmdSessionAcks
	Acks    []SessionAck   // CmdSessionAcks
	Rules   *RulesUpdate   // CmdUpdateRules, CmdUpdateRulesEvent
	Expire  *SessionExpiry // CmdSessionExpire
	Check   *Checkpoint    // CmdCheckpoint
	Delete  *WorldDelete   // CmdDeleteWorld
	Move    *WorldMove     // CmdMoveWorld, CmdMoveWorldSalted
	Import  *WorldImport   // CmdImportWorld, CmdImportWorldBack
	Diverge *Divergence    // CmdDivergence
	Salt    *SaltCmd       // CmdSalt, CmdEraseSalt, CmdEraseSaltKeep
}

// Batch is the payload of one Raft log entry: the leader's time and the
// commands grouped by the batcher.
type Batch struct {
	Time     int64 // leader wall clock, unix nanoseconds
	Commands []Command
}
