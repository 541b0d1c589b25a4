package meta

import (
	"fmt"
	"maps"
	"slices"

	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/shard/meta/plan"
)

// Node is a cluster node as the meta group records it.
type Node struct {
	Raft   string `json:"raft"`             // the node's Raft (mux) address
	HTTP   string `json:"http"`             // host:port or a base URL
	Region string `json:"region,omitempty"` // a label for voter placement
}

// Hint is a group's last known leader: the node that reported leading
// it, and in which Raft term (a report of an older term does not replace
// it).
type Hint struct {
	Node string `json:"node"`
	Term uint64 `json:"term"`
}

// State is the meta group's replicated state. FSM owns it: it is changed
// only by Apply and Restore, on raft's FSM goroutine.
type State struct {
	Nodes   map[string]Node     `json:"nodes"`
	Shards  map[uint64][]string `json:"shards"` // shard id → voters, sorted
	Worlds  map[string]uint64   `json:"worlds"` // world → shard, ahead of the hash
	Leaders map[uint64]Hint     `json:"leaders"`
	Load    map[uint64]Load     `json:"load"` // shard → its leader's last report
	// Replacing holds each shard's voter replacement under way
	// (replace.go). Absent when empty, so a snapshot without one is
	// what it was before replacements.
	Replacing map[uint64]Replacement `json:"replacing,omitempty"`
	// Removed holds the nodes remove_node took out of the map (until
	// add_node lists them again): the meta leader removes them from the
	// meta group's own configuration (members.go), while a member the
	// map has not listed yet (nodes added one at a time) stays. Absent
	// when empty.
	Removed map[string]bool `json:"removed,omitempty"`
	// Down holds the nodes mark_down declared dead (down.go), until
	// add_node lists them again or remove_node removes them: still nodes
	// of the map and voters of their shards, out of the meta group's
	// configuration, never picked for a seat. Absent when empty.
	Down map[string]bool `json:"down,omitempty"`
	// Left holds, per shard, the voter its last completed replacement
	// took out (replace_done): the FSM's own pick never names it for
	// that shard, since the shard's Raft group may still list it as a
	// voter until its leader removes it. Absent when empty.
	Left map[uint64]string `json:"left,omitempty"`
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Nodes: map[string]Node{}, Shards: map[uint64][]string{}, Worlds: map[string]uint64{},
		Leaders: map[uint64]Hint{}, Load: map[uint64]Load{}, Replacing: map[uint64]Replacement{},
		Removed: map[string]bool{}, Down: map[string]bool{}, Left: map[uint64]string{}}
}

// Result is what applying a command returns: the shard it concerned (the
// one place_world picked, or create_shard's) and create_shard's voters.
// Group.Propose adds the log index that applied it.
type Result struct {
	Shard  uint64
	Voters []string
	New    string // replace_voter's new voter (picked by the FSM when not given)
	Index  uint64
}

// apply changes s by c (validated; at meta log index index) and reports whether the map view
// changes (reports change only hints and load). A refused command leaves
// s as it was and returns an error wrapping ErrRefused (and ErrNotFound
// when it names a node or shard that does not exist); refusals are
// decided by the state alone, so every replica refuses alike.
func (s *State) apply(c Command, index uint64) (res Result, topo bool, err error) {
	switch c.Op {
	case OpAddNode:
		s.Nodes[c.Node] = Node{Raft: c.Raft, HTTP: c.HTTP, Region: c.Region}
		delete(s.Removed, c.Node)
		delete(s.Down, c.Node) // listed again: the meta leader takes it back, gated by its read level
		return Result{}, true, nil
	case OpRemoveNode:
		if _, ok := s.Nodes[c.Node]; !ok {
			return Result{}, false, fmt.Errorf("%w: %w: no node %q", ErrRefused, ErrNotFound, c.Node)
		}
		// Name every shard that holds the node, so one refusal tells the
		// operator all that is left to evacuate.
		var voter, joining []uint64
		for _, id := range s.shardIDs() {
			if slices.Contains(s.Shards[id], c.Node) {
				voter = append(voter, id)
			}
			if s.Replacing[id].New == c.Node {
				joining = append(joining, id)
			}
		}
		if len(voter) > 0 {
			return Result{}, false, fmt.Errorf("%w: node %q is a voter of shards %v", ErrRefused, c.Node, voter)
		}
		if len(joining) > 0 {
			return Result{}, false, fmt.Errorf("%w: node %q is joining shards %v", ErrRefused, c.Node, joining)
		}
		delete(s.Nodes, c.Node)
		delete(s.Down, c.Node)
		for id, n := range s.Left {
			if n == c.Node {
				delete(s.Left, id)
			}
		}
		s.Removed[c.Node] = true
		return Result{}, true, nil
	case OpCreateShard:
		if _, ok := s.Shards[c.Shard]; ok {
			return Result{}, false, fmt.Errorf("%w: shard %d exists", ErrRefused, c.Shard)
		}
		voters := slices.Clone(c.Voters)
		if c.Replicas > 0 {
			voters = SpreadVoters(s.seats(), c.Replicas)
		}
		if len(voters) == 0 {
			return Result{}, false, fmt.Errorf("%w: shard %d: no nodes to place voters on", ErrRefused, c.Shard)
		}
		for _, v := range voters {
			if _, ok := s.Nodes[v]; !ok {
				return Result{}, false, fmt.Errorf("%w: %w: shard %d: voter %q is not a node", ErrRefused, ErrNotFound, c.Shard, v)
			}
			if s.Down[v] {
				return Result{}, false, fmt.Errorf("%w: shard %d: voter %q is marked down", ErrRefused, c.Shard, v)
			}
		}
		slices.Sort(voters)
		s.Shards[c.Shard] = voters
		return Result{Shard: c.Shard, Voters: slices.Clone(voters)}, true, nil
	case OpRemoveShard:
		if _, ok := s.Shards[c.Shard]; !ok {
			return Result{}, false, fmt.Errorf("%w: %w: no shard %d", ErrRefused, ErrNotFound, c.Shard)
		}
		if n := s.worldsOn()[c.Shard]; n > 0 {
			return Result{}, false, fmt.Errorf("%w: shard %d still holds %d worlds", ErrRefused, c.Shard, n)
		}
		delete(s.Shards, c.Shard)
		delete(s.Leaders, c.Shard)
		delete(s.Load, c.Shard)
		delete(s.Replacing, c.Shard)
		delete(s.Left, c.Shard)
		return Result{Shard: c.Shard}, true, nil
	case OpAssignWorld:
		if _, ok := s.Shards[c.Shard]; !ok {
			return Result{}, false, fmt.Errorf("%w: %w: world %q: no shard %d", ErrRefused, ErrNotFound, c.World, c.Shard)
		}
		if c.Expect != nil {
			if at := s.shardOf(c.World); at != *c.Expect {
				return Result{}, false, fmt.Errorf("%w: %w: world %q is on shard %d, not %d", ErrRefused, ErrElsewhere, c.World, at, *c.Expect)
			}
		}
		s.Worlds[c.World] = c.Shard
		return Result{Shard: c.Shard}, true, nil
	case OpPlaceWorld:
		if g, ok := s.Worlds[c.World]; ok {
			return Result{Shard: g}, false, nil // placed already: the same answer again
		}
		g, ok := PlaceWorld(s.loads())
		if !ok {
			return Result{}, false, fmt.Errorf("%w: world %q: no shards", ErrRefused, c.World)
		}
		s.Worlds[c.World] = g
		return Result{Shard: g}, true, nil
	case OpSeed:
		if len(s.Nodes) > 0 || len(s.Shards) > 0 {
			return Result{}, false, fmt.Errorf("%w: the meta map is not empty: seeded already", ErrRefused)
		}
		for id, n := range c.Seed.Nodes {
			s.Nodes[id] = Node{Raft: n.Raft, HTTP: n.HTTP}
			delete(s.Removed, id) // listed again, as add_node does
		}
		for _, sh := range c.Seed.Shards {
			s.Shards[sh.ID] = slices.Sorted(slices.Values(sh.Voters))
		}
		maps.Copy(s.Worlds, c.Seed.Worlds)
		return Result{}, true, nil
	case OpReplaceVoter, OpVoterReady, OpReplaceDone:
		return s.applyReplace(c, index)
	case OpMarkDown:
		return s.applyMarkDown(c)
	case OpReport:
		for g, term := range c.Leads {
			if h, ok := s.Leaders[g]; !ok || term >= h.Term {
				s.Leaders[g] = Hint{Node: c.Node, Term: term}
			}
		}
		for g, l := range c.Load {
			if _, ok := s.Shards[g]; ok {
				s.Load[g] = l
			}
		}
		return Result{}, false, nil
	}
	return Result{}, false, fmt.Errorf("%w: unknown op %q", ErrBadCommand, c.Op)
}

// shardOf returns the shard world is on: the one the map lists it on,
// else the one its name hashes to (shard.Map.ShardOf's rule). The state
// holds shards.
func (s *State) shardOf(world string) uint64 {
	if g, ok := s.Worlds[world]; ok {
		return g
	}
	g, _ := plan.Hashed(world, s.shardIDs())
	return g
}

// shardIDs returns the shard ids in order.
func (s *State) shardIDs() []uint64 { return slices.Sorted(maps.Keys(s.Shards)) }

// worldsOn counts the listed worlds of each shard.
func (s *State) worldsOn() map[uint64]int {
	n := map[uint64]int{}
	for _, g := range s.Worlds {
		n[g]++
	}
	return n
}

// loads returns every shard's load for PlaceWorld.
func (s *State) loads() []ShardLoad {
	n := s.worldsOn()
	out := make([]ShardLoad, 0, len(s.Shards))
	for _, id := range s.shardIDs() {
		l := s.Load[id]
		out = append(out, ShardLoad{ID: id, Worlds: n[id], Players: l.Players, Events: l.Events})
	}
	return out
}

// seats returns every node that is not down with the number of shards
// it is a voter of, for SpreadVoters.
func (s *State) seats() []NodeSeats {
	n := map[string]int{}
	for _, voters := range s.Shards {
		for _, v := range voters {
			n[v]++
		}
	}
	out := make([]NodeSeats, 0, len(s.Nodes))
	for id, node := range s.Nodes {
		if s.Down[id] {
			continue // declared dead: never given a seat
		}
		out = append(out, NodeSeats{ID: id, Region: node.Region, Seats: n[id]})
	}
	return out
}

// Map returns s as a shard map: membership is the group holding the
// node table (gsd's group 0). Worlds it does not list hash over its
// shards as any shard.Map's do.
func (s *State) Map(membership uint64) *shard.Map {
	m := &shard.Map{Membership: membership, Nodes: make(map[string]shard.MapNode, len(s.Nodes)),
		Shards: make([]shard.MapShard, 0, len(s.Shards)), Worlds: maps.Clone(s.Worlds)}
	for id, n := range s.Nodes {
		m.Nodes[id] = shard.MapNode{Raft: n.Raft, HTTP: n.HTTP}
	}
	for _, id := range s.shardIDs() {
		m.Shards = append(m.Shards, shard.MapShard{ID: id, Voters: slices.Clone(s.Shards[id])})
	}
	return m
}

// leaders returns the hints' node ids by group.
func (s *State) leaders() map[uint64]string {
	out := make(map[uint64]string, len(s.Leaders))
	for g, h := range s.Leaders {
		out[g] = h.Node
	}
	return out
}

// events returns each shard's reported events per second.
func (s *State) events() map[uint64]uint64 {
	out := make(map[uint64]uint64, len(s.Load))
	for g, l := range s.Load {
		out[g] = l.Events
	}
	return out
}

// players returns each shard's reported players.
func (s *State) players() map[uint64]uint64 {
	out := make(map[uint64]uint64, len(s.Load))
	for g, l := range s.Load {
		out[g] = l.Players
	}
	return out
}
