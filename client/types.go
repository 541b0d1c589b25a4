package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Priorities of an action on the wire.
const (
	PriorityCritical = "critical"
	PriorityBulk     = "bulk"
)

// ActionRequest is one action as the HTTP API takes it; the world is in the
// path. Player and Seq are the idempotency key with the world: a retry must
// send the same payload with the same Seq.
type ActionRequest struct {
	Player    string   `json:"player"`
	Seq       uint64   `json:"seq"`
	InputTime int64    `json:"input_time,omitempty"` // client input time, unix nanoseconds
	Priority  string   `json:"priority,omitempty"`   // "critical" (default) or "bulk"
	Ops       []fsm.Op `json:"ops"`
}

// Set returns a set op of field to v.
func Set(entity, field string, v fsm.Value) fsm.Op {
	return fsm.Op{Kind: fsm.OpSet, Entity: entity, Field: field, Value: v}
}

// Incr returns an incr op of a counter field by by.
func Incr(entity, field string, by int64) fsm.Op {
	return fsm.Op{Kind: fsm.OpIncr, Entity: entity, Field: field, By: by}
}

// Add returns an add op of element v to a set field.
func Add(entity, field string, v fsm.Value) fsm.Op {
	return fsm.Op{Kind: fsm.OpAdd, Entity: entity, Field: field, Value: v}
}

// Remove returns a remove op of element v from a set field.
func Remove(entity, field string, v fsm.Value) fsm.Op {
	return fsm.Op{Kind: fsm.OpRemove, Entity: entity, Field: field, Value: v}
}

// Delete returns a delete op of an entity.
func Delete(entity string) fsm.Op {
	return fsm.Op{Kind: fsm.OpDelete, Entity: entity}
}

// ExpectVersion returns op with the precondition that its field's version
// is version (0 means the field must not exist yet).
func ExpectVersion(op fsm.Op, version uint64) fsm.Op {
	if version == 0 {
		op.Expect = fsm.Expect{Mode: fsm.ExpectAbsent}
	} else {
		op.Expect = fsm.Expect{Mode: fsm.ExpectVersion, Version: version}
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
type Entity struct {
	ID       string            `json:"id"`
	Version  uint64            `json:"version"`
	Seq      uint64            `json:"seq"` // the world seq the read reflects
	Fields   map[string]any    `json:"fields"`
	Versions map[string]uint64 `json:"versions"`
}

// Int returns a numeric field as an int64.
func (e Entity) Int(field string) (int64, bool) {
	switch v := e.Fields[field].(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case float64:
		return int64(v), float64(int64(v)) == v
	case int64:
		return v, true
	}
	return 0, false
}

// World summarises a world.
type World struct {
	ID       string    `json:"id"`
	Origin   string    `json:"origin,omitempty"`
	Seq      uint64    `json:"seq"`
	Index    uint64    `json:"index,omitempty"`
	Entities int       `json:"entities"`
	Players  int       `json:"players"`
	Hash     Hash      `json:"hash"`
	Rules    fsm.Rules `json:"rules"`
}

// HashPoint is a node's state hash of a world after the event with seq Seq.
type HashPoint struct {
	World string `json:"world"`
	Seq   uint64 `json:"seq"`
	Index uint64 `json:"index"`
	Hash  Hash   `json:"hash"`
}

// Hash is a state hash as 16 hex digits. It decodes from a JSON string or a
// JSON number, so the client does not depend on the server's choice.
type Hash string

// UnmarshalJSON accepts "00ab..." or a number.
func (h *Hash) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*h = Hash(s)
		return nil
	}
	if string(b) == "null" {
		*h = ""
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	*h = Hash(wire.HashString(n))
	return nil
}

// Status is a node's view of its Raft group.
type Status struct {
	ID           string         `json:"id"`
	State        string         `json:"state"`
	Leader       string         `json:"leader"`
	LeaderHTTP   string         `json:"leader_http,omitempty"`
	Term         uint64         `json:"term"`
	AppliedIndex uint64         `json:"applied_index"`
	CommitIndex  uint64         `json:"commit_index"`
	LastIndex    uint64         `json:"last_index"`
	Region       string         `json:"region"`
	Servers      []Server       `json:"servers"`
	Nodes        []fsm.NodeInfo `json:"nodes"`
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"`
}
