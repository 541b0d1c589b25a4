package meta

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Replacement is a shard's voter replacement under way: New takes Old's
// seat. The map goes through two states so the shard never has fewer
// voters than before: first New joins (replace_voter: Old is still a
// voter, New opens the group without bootstrap and the shard's leader
// adds it as a nonvoter; New says it caught up, voter_ready; the leader
// makes it a voter), then Old leaves (replace_done, proposed by the
// shard's leader once New votes in the group's Raft configuration; the
// leader then removes Old from that configuration and Old stops the
// group and deletes its data).
type Replacement struct {
	Old   string `json:"old"`
	New   string `json:"new"`
	Ready bool   `json:"ready,omitempty"` // New caught up as a nonvoter (voter_ready)
	// Since is the meta log index of the replace_voter that listed it
	// (0: listed by a gsd before it was kept): New marks the shard's
	// directory with it, so a directory left from earlier is told apart
	// from its own (joindir.go).
	Since uint64 `json:"since,omitempty"`
}

// isReplace reports whether op is one of a voter replacement's steps.
func isReplace(op Op) bool {
	return op == OpReplaceVoter || op == OpVoterReady || op == OpReplaceDone
}

// applyReplace applies replace_voter, voter_ready and replace_done
// (validated). Refusals wrap ErrRefused, and ErrNotFound for an unknown
// shard or node. Repeating a step answers as the first time.
// index is the command's meta log index.
func (s *State) applyReplace(c Command, index uint64) (Result, bool, error) {
	voters, ok := s.Shards[c.Shard]
	if !ok {
		return Result{}, false, fmt.Errorf("%w: %w: no shard %d", ErrRefused, ErrNotFound, c.Shard)
	}
	res := Result{Shard: c.Shard, Voters: slices.Clone(voters)}
	r, pending := s.Replacing[c.Shard]
	switch c.Op {
	case OpReplaceVoter:
		if pending {
			if r.Old == c.Node && (r.New == c.New || c.New == "") {
				return Result{Shard: c.Shard, Voters: replaced(voters, r.Old, r.New), New: r.New}, false, nil // the same replacement again
			}
			return Result{}, false, fmt.Errorf("%w: shard %d is replacing %s with %s already", ErrRefused, c.Shard, r.Old, r.New)
		}
		if c.New == "" {
			if !slices.Contains(voters, c.Node) {
				return Result{}, false, fmt.Errorf("%w: node %q is not a voter of shard %d", ErrRefused, c.Node, c.Shard)
			}
			if c.New, ok = s.replacementFor(c.Shard, c.Node); !ok {
				return Result{}, false, fmt.Errorf("%w: no node can take %s's seat in shard %d: every node is a voter of it, marked down, or (%s) the voter its last replacement took out (a replacement needs more nodes than the shard has voters; name that one with new to take it back)",
					ErrRefused, c.Node, c.Shard, cmp.Or(s.Left[c.Shard], "none"))
			}
		}
		for _, n := range []string{c.Node, c.New} {
			if _, ok := s.Nodes[n]; !ok {
				return Result{}, false, fmt.Errorf("%w: %w: shard %d: no node %q", ErrRefused, ErrNotFound, c.Shard, n)
			}
		}
		if !slices.Contains(voters, c.Node) {
			return Result{}, false, fmt.Errorf("%w: node %q is not a voter of shard %d", ErrRefused, c.Node, c.Shard)
		}
		if slices.Contains(voters, c.New) {
			return Result{}, false, fmt.Errorf("%w: node %q is a voter of shard %d already", ErrRefused, c.New, c.Shard)
		}
		if s.Down[c.New] {
			return Result{}, false, fmt.Errorf("%w: node %q is marked down: add it to the map again first (gsdctl node add)", ErrRefused, c.New)
		}
		s.Replacing[c.Shard] = Replacement{Old: c.Node, New: c.New, Since: index}
		return Result{Shard: c.Shard, Voters: replaced(voters, c.Node, c.New), New: c.New}, false, nil
	case OpVoterReady:
		if !pending || r.New != c.New {
			return Result{}, false, fmt.Errorf("%w: node %q is not joining shard %d", ErrRefused, c.New, c.Shard)
		}
		r.Ready = true
		s.Replacing[c.Shard] = r
		return res, false, nil
	case OpReplaceDone:
		if !pending {
			if slices.Contains(voters, c.New) && !slices.Contains(voters, c.Node) {
				return res, false, nil // done already
			}
			return Result{}, false, fmt.Errorf("%w: shard %d is not replacing a voter", ErrRefused, c.Shard)
		}
		if r.Old != c.Node || r.New != c.New {
			return Result{}, false, fmt.Errorf("%w: shard %d is replacing %s with %s, not %s with %s", ErrRefused, c.Shard, r.Old, r.New, c.Node, c.New)
		}
		if !r.Ready {
			return Result{}, false, fmt.Errorf("%w: shard %d: %s has not caught up yet", ErrRefused, c.Shard, c.New)
		}
		next := replaced(voters, c.Node, c.New)
		s.Shards[c.Shard] = next
		delete(s.Replacing, c.Shard)
		s.Left[c.Shard] = c.Node
		return Result{Shard: c.Shard, Voters: slices.Clone(next)}, true, nil
	}
	return Result{}, false, fmt.Errorf("%w: unknown op %q", ErrBadCommand, c.Op)
}

// replaced returns voters with old replaced by joiner, sorted.
func replaced(voters []string, old, joiner string) []string {
	next := append(slices.DeleteFunc(slices.Clone(voters), func(v string) bool { return v == old }), joiner)
	slices.Sort(next)
	return next
}

// replacementFor picks the node to take old's seat in shard by
// SpreadVoters' rule, given the voters that stay: a region with the fewest of the
// shard's voters, then the fewest seats, then the lowest id; never a
// voter of the shard, a node marked down (seats leaves them out), nor
// the node the shard's last completed replacement took out (Left: the
// shard's Raft group may list it as a voter still, and "recently" is
// what every replica's state says alike). False: no node is left.
func (s *State) replacementFor(shard uint64, old string) (string, bool) {
	voters := s.Shards[shard]
	inRegion := map[string]int{}
	for _, v := range voters {
		if v != old {
			inRegion[s.Nodes[v].Region]++
		}
	}
	var best NodeSeats
	found := false
	for _, n := range s.seats() {
		if slices.Contains(voters, n.ID) || n.ID == s.Left[shard] {
			continue
		}
		if !found || cmp.Or(cmp.Compare(inRegion[n.Region], inRegion[best.Region]), cmp.Compare(n.Seats, best.Seats), cmp.Compare(n.ID, best.ID)) < 0 {
			best, found = n, true
		}
	}
	return best.ID, found
}

// checkReplacing checks a snapshot's replacements: each on a shard, Old
// a voter of it, New a node that is not.
func (s *State) checkReplacing() error {
	for id, r := range s.Replacing {
		voters, ok := s.Shards[id]
		switch {
		case !ok:
			return fmt.Errorf("replacing: no shard %d", id)
		case !slices.Contains(voters, r.Old):
			return fmt.Errorf("replacing: %q is not a voter of shard %d", r.Old, id)
		case slices.Contains(voters, r.New):
			return fmt.Errorf("replacing: %q is a voter of shard %d already", r.New, id)
		}
		if _, ok := s.Nodes[r.New]; !ok {
			return fmt.Errorf("replacing: shard %d: no node %q", id, r.New)
		}
	}
	return nil
}

// joining returns each shard's joiner, for shard.View.
func (s *State) joining() map[uint64]string {
	out := make(map[uint64]string, len(s.Replacing))
	for id, r := range s.Replacing {
		out[id] = r.New
	}
	return out
}

// Replacements returns the voter replacements under way, by shard, as
// this replica last applied them.
func (f *FSM) Replacements() map[uint64]Replacement {
	if p := f.repl.Load(); p != nil {
		return *p
	}
	return nil
}

// publishReplacing makes the state's replacements visible to
// Replacements.
func (f *FSM) publishReplacing() {
	m := maps.Clone(f.state.Replacing)
	f.repl.Store(&m)
}
