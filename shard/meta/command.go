package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/gsd-dev/gsd/shard"
)

// commandVersion is the first byte of every encoded Command; the rest is
// JSON (the meta group's traffic is a few entries per minute).
const commandVersion byte = 1

// Op names what a Command does.
type Op string

// The meta group's commands.
const (
	OpAddNode     Op = "add_node"     // Node, Raft, HTTP, Region
	OpRemoveNode  Op = "remove_node"  // Node: refused while it is a shard's voter
	OpCreateShard Op = "create_shard" // Shard, and Voters or Replicas (the FSM spreads them)
	OpRemoveShard Op = "remove_shard" // Shard: refused while the map lists worlds on it
	OpAssignWorld Op = "assign_world" // World on Shard; with Expect, only while World is on shard Expect
	OpPlaceWorld  Op = "place_world"  // World: the FSM picks the shard (PlaceWorld)
	OpReport      Op = "report"       // Node leads Leads (group → term) and reports Load
	OpSeed        Op = "seed"         // Seed's nodes, shards and worlds, into an empty map only
	// Replacing a voter of a shard (node evacuation, replace.go): the
	// three steps of one replacement, each a map state.
	OpReplaceVoter Op = "replace_voter" // Shard: New (empty: the FSM picks, ReplacementFor) is to take Node's seat
	OpVoterReady   Op = "voter_ready"   // Shard: New, joining, has caught up (proposed by New)
	OpReplaceDone  Op = "replace_done"  // Shard: New is a Raft voter; Node leaves the map (proposed by the shard's leader)
	// OpMarkDown declares Nodes dead (down.go): they stay nodes of the
	// map (and voters of their shards, until evacuated) but leave the
	// meta group's configuration, so the gate no longer waits for them.
	OpMarkDown Op = "mark_down" // Nodes
)

// Command is one change to the meta state. Which fields count depends on
// Op (see the Op constants); the others must be empty.
type Command struct {
	Op       Op       `json:"op"`
	Node     string   `json:"node,omitempty"`
	Raft     string   `json:"raft,omitempty"`
	HTTP     string   `json:"http,omitempty"`
	Region   string   `json:"region,omitempty"`
	Shard    uint64   `json:"shard,omitempty"`
	Voters   []string `json:"voters,omitempty"`
	Replicas int      `json:"replicas,omitempty"`
	World    string   `json:"world,omitempty"`
	// Expect makes assign_world conditional: refused (ErrElsewhere) unless
	// the world is on shard Expect now, listed or hashed. A replica on a
	// binary before it refuses the field (DecodeCommand is strict) while
	// newer ones apply it, so the leader proposes it only once every
	// member reads it (Group's gate, forward.go); without it the entry's
	// bytes are what they were.
	Expect *uint64           `json:"expect,omitempty"`
	Leads  map[uint64]uint64 `json:"leads,omitempty"` // group → Raft term in which Node leads it
	Load   map[uint64]Load   `json:"load,omitempty"`  // shard → its load, from its leader
	Seed   *shard.Map        `json:"seed,omitempty"`  // a static map (gsd --shard-map) to start from
	// New is the node that takes Node's seat in Shard (replace_voter,
	// voter_ready, replace_done). Gated like Expect: only those ops take
	// it, and the others encode as before.
	New string `json:"new,omitempty"`
	// Nodes are the nodes mark_down declares dead (several at once: each
	// must not answer while the others are marked). Gated like New.
	Nodes []string `json:"nodes,omitempty"`
}

// Load is a shard's load as its leader reports it.
type Load struct {
	Players uint64 `json:"players"`
	Events  uint64 `json:"events_per_sec"`
}

// maxReplicas bounds Replicas: a Raft group of more voters is a mistake.
const maxReplicas = 9

// Encode returns c's log entry: the version byte, then JSON.
func (c Command) Encode() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	return append([]byte{commandVersion}, b...), nil
}

// DecodeCommand decodes and validates a log entry. Every error wraps
// ErrBadCommand; no input makes it panic (FuzzDecodeCommand).
func DecodeCommand(b []byte) (Command, error) {
	if len(b) == 0 {
		return Command{}, fmt.Errorf("%w: empty entry", ErrBadCommand)
	}
	if b[0] != commandVersion {
		return Command{}, fmt.Errorf("%w: version %d, want %d", ErrBadCommand, b[0], commandVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b[1:]))
	dec.DisallowUnknownFields()
	var c Command
	if err := dec.Decode(&c); err != nil {
		return Command{}, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if dec.More() {
		return Command{}, fmt.Errorf("%w: trailing data", ErrBadCommand)
	}
	// An empty list is an absent one, as Encode writes it.
	if len(c.Voters) == 0 {
		c.Voters = nil
	}
	if len(c.Leads) == 0 {
		c.Leads = nil
	}
	if len(c.Load) == 0 {
		c.Load = nil
	}
	if len(c.Nodes) == 0 {
		c.Nodes = nil
	}
	if err := c.Validate(); err != nil {
		return Command{}, err
	}
	return c, nil
}

// Validate checks c's fields for its Op, without the state: every error
// wraps ErrBadCommand.
func (c Command) Validate() error {
	var errs []error
	need := func(ok bool, what string) {
		if !ok {
			errs = append(errs, errors.New(what))
		}
	}
	// unused lists the fields Op does not take: they must be empty.
	unused := map[string]bool{
		"node": c.Node != "", "raft": c.Raft != "", "http": c.HTTP != "", "region": c.Region != "",
		"shard": c.Shard != 0, "voters": c.Voters != nil, "replicas": c.Replicas != 0,
		"world": c.World != "", "expect": c.Expect != nil, "leads": c.Leads != nil, "load": c.Load != nil, "seed": c.Seed != nil,
		"new": c.New != "", "nodes": c.Nodes != nil,
	}
	var takes []string
	switch c.Op {
	case OpAddNode:
		takes = []string{"node", "raft", "http", "region"}
		need(c.Node != "", "a node id is required")
		if _, _, err := net.SplitHostPort(c.Raft); err != nil {
			errs = append(errs, fmt.Errorf("raft address %q: %v", c.Raft, err))
		}
		if err := shard.CheckHTTPAddr(c.HTTP); err != nil {
			errs = append(errs, fmt.Errorf("http address %q: %v", c.HTTP, err))
		}
	case OpRemoveNode:
		takes = []string{"node"}
		need(c.Node != "", "a node id is required")
	case OpCreateShard:
		takes = []string{"shard", "voters", "replicas"}
		need(c.Shard != shard.MetaGroup, fmt.Sprintf("shard id %d is reserved for the meta group", c.Shard))
		need((len(c.Voters) == 0) != (c.Replicas == 0), "give either voters or replicas")
		need(c.Replicas >= 0 && c.Replicas <= maxReplicas, fmt.Sprintf("replicas %d: want 1 to %d", c.Replicas, maxReplicas))
		need(len(c.Voters) <= maxReplicas, fmt.Sprintf("%d voters: at most %d", len(c.Voters), maxReplicas))
		seen := map[string]bool{}
		for _, v := range c.Voters {
			need(v != "", "an empty voter id")
			need(!seen[v], fmt.Sprintf("voter %q listed twice", v))
			seen[v] = true
		}
	case OpRemoveShard:
		takes = []string{"shard"}
	case OpAssignWorld:
		takes = []string{"world", "shard", "expect"}
		need(c.World != "", "a world name is required")
	case OpPlaceWorld:
		takes = []string{"world"}
		need(c.World != "", "a world name is required")
	case OpReport:
		takes = []string{"node", "leads", "load"}
		need(c.Node != "", "a node id is required")
	case OpSeed:
		takes = []string{"seed"}
		if c.Seed == nil {
			errs = append(errs, errors.New("a seed map is required"))
		} else {
			m := *c.Seed // Validate sorts the shards: leave the caller's alone
			m.Shards = slices.Clone(m.Shards)
			if err := m.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	case OpReplaceVoter, OpReplaceDone:
		takes = []string{"shard", "node", "new"}
		need(c.Node != "", "the voter to replace (node) is required")
		need(c.New != "" || c.Op == OpReplaceVoter, "the node taking its seat (new) is required")
		need(c.Node != c.New || c.Node == "", "node and new are the same node")
	case OpVoterReady:
		takes = []string{"shard", "new"}
		need(c.New != "", "the joining node (new) is required")
	case OpMarkDown:
		takes = []string{"nodes"}
		need(len(c.Nodes) > 0, "the nodes to mark down (nodes) are required")
		seen := map[string]bool{}
		for _, n := range c.Nodes {
			need(n != "", "an empty node id")
			need(!seen[n], fmt.Sprintf("node %q listed twice", n))
			seen[n] = true
		}
	default:
		errs = append(errs, fmt.Errorf("unknown op %q", c.Op))
	}
	for _, f := range takes {
		delete(unused, f)
	}
	for _, f := range []string{"node", "raft", "http", "region", "shard", "voters", "replicas", "world", "expect", "leads", "load", "seed", "new", "nodes"} {
		if unused[f] {
			errs = append(errs, fmt.Errorf("%s does not take %s", c.Op, f))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadCommand, c.Op, err)
	}
	return nil
}
