package fsm

import (
	"encoding/json"
	"fmt"

	"github.com/gsd-dev/gsd/wire"
)

// Status is the committed outcome of an action.
type Status uint8

// The statuses of an event.
const (
	StatusApplied Status = iota + 1
	StatusConflict
	StatusRejected
)

var statusNames = [...]string{"", wire.StatusApplied, wire.StatusConflict, wire.StatusRejected}

// String returns the status's wire name.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", s)
}

// Change is one field's state in an event: after the action for applied
// events, the current state of a field whose expect failed for conflicts.
type Change struct {
	Entity  string
	Field   string // empty for an entity delete
	Op      OpKind
	Value   Value   // set/incr: resulting value; add/remove: the element
	Set     []Value // conflicts on set fields: the current elements, sorted
	Version uint64  // the field's version (for a delete: the entity's last version)
	Exists  bool    // conflicts: whether the field exists
}

// Event is the committed outcome of one action, numbered by its world's seq.
type Event struct {
	World     string
	Seq       uint64
	Index     uint64 // Raft index of the entry that carried it
	Time      int64  // leader time of that entry, unix nanoseconds, clamped to the world's previous event's
	Player    string
	ClientSeq uint64
	Priority  Priority
	Status    Status
	Reason    string // rejected: a reason code
	Changes   []Change
	Notice    *Notice // a system event's record (divergence.go, rules_update.go); Player is empty
	// Salted is, in a world whose audit leaves are salted, the player
	// ids the event names and their salted forms (salt.go); nil when it
	// names none.
	Salted *Salting
}

// Versions returns entity → field → version of the event's changes.
func (e *Event) Versions() map[string]map[string]uint64 {
	out := make(map[string]map[string]uint64)
	for _, c := range e.Changes {
		if c.Field == "" {
			continue
		}
		m := out[c.Entity]
		if m == nil {
			m = make(map[string]uint64)
			out[c.Entity] = m
		}
		m[c.Field] = c.Version
	}
	return out
}

// Result is what Apply returns for one command. For an action either Event
// is set (a new event, or with Duplicate the original one as far as the FSM
// retains it: seq, status, reason) or Err is (ErrSeqReused, ErrSeqExpired,
// ErrUnknownWorld). For other commands only Err may be set.
type Result struct {
	Event     *Event
	Duplicate bool
	Err       error
	Session   *SessionInfo // session commands
	// Acked is, for CmdSessionAcks, how many of its acks applied (the
	// others named sessions that no longer exist, or seqs beyond their
	// world's).
	Acked int
	// RulesVersion is, for CmdUpdateRules, the world's new rules version.
	RulesVersion uint64
	// Expired is, for CmdSessionExpire, the sessions it closed, sorted by
	// id (as they were before closing).
	Expired []SessionInfo
	// Checkpoint is, for CmdCheckpoint, this replica's comparison of the
	// proposer's hash with its own: it differs per replica by design.
	Checkpoint *CheckpointResult
	// Deleted is, for CmdDeleteWorld, the world as it was before the
	// delete removed it.
	Deleted *WorldInfo
	// Fence is, for CmdMoveWorld, the world's fence.
	Fence *Fence
	// Imported is, for CmdImportWorld, the world as installed.
	Imported *WorldInfo
}

// Wire returns the event as clients see it.
func (e *Event) Wire() wire.Event {
	j := wire.Event{
		World: e.World, Seq: e.Seq, Index: e.Index, Time: e.Time,
		Player: e.Player, ClientSeq: e.ClientSeq, Priority: e.Priority.String(),
		Status: e.Status.String(), Reason: e.Reason,
	}
	if n := e.Notice; n != nil {
		j.Notice = &wire.Notice{Kind: n.Kind, Node: n.Node, Index: n.Index, Leader: n.Leader, RulesVersion: n.RulesVersion}
	}
	if len(e.Changes) > 0 {
		j.Versions = e.Versions()
		j.Changes = make([]wire.Change, len(e.Changes))
		for i, c := range e.Changes {
			jc := wire.Change{Entity: c.Entity, Field: c.Field, Version: c.Version, Set: c.Set}
			if c.Op != 0 {
				jc.Op = c.Op.String()
			}
			if c.Value.Kind != KindNull {
				v := c.Value
				jc.Value = &v
			}
			if e.Status == StatusConflict {
				ex := c.Exists
				jc.Exists = &ex
			}
			j.Changes[i] = jc
		}
	}
	return j
}

// MarshalJSON encodes the event in its wire form.
func (e Event) MarshalJSON() ([]byte, error) { return json.Marshal(e.Wire()) }
