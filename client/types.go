package client

import "github.com/gsd-dev/gsd/wire"

// Priorities of an action on the wire.
const (
	PriorityCritical = wire.PriorityNameCritical
	PriorityBulk     = wire.PriorityNameBulk
)

// ActionRequest is one action as the HTTP API takes it; the world is in the
// path. Player and Seq are the idempotency key with the world: a retry must
// send the same payload with the same Seq.
type ActionRequest = wire.ActionRequest

// Set returns a set op of field to v.
func Set(entity, field string, v wire.Value) wire.Op {
	return wire.Op{Kind: wire.OpSet, Entity: entity, Field: field, Value: v}
}

// Incr returns an incr op of a counter field by by.
func Incr(entity, field string, by int64) wire.Op {
	return wire.Op{Kind: wire.OpIncr, Entity: entity, Field: field, By: by}
}

// Add returns an add op of element v to a set field.
func Add(entity, field string, v wire.Value) wire.Op {
	return wire.Op{Kind: wire.OpAdd, Entity: entity, Field: field, Value: v}
}

// Remove returns a remove op of element v from a set field.
func Remove(entity, field string, v wire.Value) wire.Op {
	return wire.Op{Kind: wire.OpRemove, Entity: entity, Field: field, Value: v}
}

// Delete returns a delete op of an entity.
func Delete(entity string) wire.Op {
	return wire.Op{Kind: wire.OpDelete, Entity: entity}
}

// ExpectVersion returns op with the precondition that its field's version
// is version (0 means the field must not exist yet).
func ExpectVersion(op wire.Op, version uint64) wire.Op {
	if version == 0 {
		op.Expect = wire.Expect{Mode: wire.ExpectAbsent}
	} else {
		op.Expect = wire.Expect{Mode: wire.ExpectVersion, Version: version}
	}
	return op
}

// BatchResult is one action's outcome in ActBatch: Event, or Err.
type BatchResult struct {
	Event wire.Event
	Err   error
}

// Consistency selects how a read relates to writes.
type Consistency string

// The read consistency levels.
const (
	// Linearizable reads see every write acknowledged before the read started.
	Linearizable Consistency = "linearizable"
	// Stale reads are served by any node from its applied state.
	Stale Consistency = "stale"
)

// Entity is one entity as read: field values (json.Number for numbers, []any
// for set fields) and each field's version.
type Entity = wire.Entity

// World summarises a world.
type World = wire.World

// HashPoint is a node's state hash of a world after the event with seq Seq.
type HashPoint = wire.HashPoint

// Hash is a state hash as 16 hex digits. It decodes from a JSON string or a
// JSON number, so the client does not depend on the server's choice.
type Hash = wire.Hash

// Status is a node's view of its Raft group.
type Status = wire.Status

// Server is one member of the Raft configuration.
type Server = wire.Server
