package meta

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
)

// A node declared dead (mark_down) stays a node of the map and a voter
// of its shards until they are evacuated, but leaves the meta group's
// configuration first, so the gate, which waits for every member to
// read an entry before it is proposed, no longer waits for it. The
// safety of the gate holds because a member out of the configuration is
// sent no entry and no snapshot:
//
//   - The leader takes a target out of the configuration (RemoveServer)
//     before it proposes mark_down, and only once the target does not
//     answer the probe (a live member, of any version, is refused: it is
//     evacuated alive, and the gate waits for it as for any member).
//     Raft stops replicating to a server as soon as the configuration
//     entry that removes it is appended, so no entry after it, the mark
//     included, ever reaches the target.
//   - Nothing adds it back while it is marked down (members.go), and
//     the leader adds a node to the meta group only once it answers the
//     probe with this binary's read level (joinable): a node that comes
//     back, marked or not, takes the log from where it stopped or a
//     snapshot only if it reads everything this leader's log can hold.
//   - Every other member, still in the configuration, must read
//     mark_down (level 5) as for any gated command.
//
// So no meta replica applies an entry or restores a snapshot it cannot
// read, and a member on an older gsd that is merely alive still closes
// the gate. Several nodes can be marked in one command, which is how
// two dead members are declared when each would close the gate for the
// other.

// applyMarkDown applies mark_down (validated): every node must be a
// node of the map; marking a node marked already answers as the first
// time.
func (s *State) applyMarkDown(c Command) (Result, bool, error) {
	for _, n := range c.Nodes {
		if _, ok := s.Nodes[n]; !ok {
			return Result{}, false, fmt.Errorf("%w: %w: no node %q", ErrRefused, ErrNotFound, n)
		}
	}
	changed := false
	for _, n := range c.Nodes {
		changed = changed || !s.Down[n]
		s.Down[n] = true
	}
	return Result{}, changed, nil
}

// checkDown checks a snapshot's down marks (nodes of the map) and its
// last replaced-out voters (a node of the map that is not a voter of a
// shard that exists).
func (s *State) checkDown() error {
	for n := range s.Down {
		if _, ok := s.Nodes[n]; !ok {
			return fmt.Errorf("down: no node %q", n)
		}
	}
	for id, n := range s.Left {
		voters, ok := s.Shards[id]
		switch _, node := s.Nodes[n]; {
		case !ok:
			return fmt.Errorf("left: no shard %d", id)
		case !node:
			return fmt.Errorf("left: shard %d: no node %q", id, n)
		case slices.Contains(voters, n):
			return fmt.Errorf("left: %q is a voter of shard %d", n, id)
		}
	}
	return nil
}

// members returns what the meta group's members follow (members.go).
func (s *State) members() *members {
	nodes := maps.Clone(s.Nodes)
	maps.DeleteFunc(nodes, func(id string, _ Node) bool { return s.Down[id] })
	return &members{nodes: nodes, removed: maps.Clone(s.Removed), down: maps.Clone(s.Down), all: maps.Clone(s.Nodes)}
}

// NodeInfo is a node of the map as the meta group records it beyond the
// shard map: its region and whether it is marked down.
type NodeInfo struct {
	Region string
	Down   bool
}

// Nodes returns every node of the map with its region and down mark, as
// this replica last applied them.
func (g *Group) Nodes() map[string]NodeInfo {
	m := g.fsm.members()
	out := make(map[string]NodeInfo, len(m.all))
	for id, n := range m.all {
		out[id] = NodeInfo{Region: n.Region, Down: m.down[id]}
	}
	return out
}

// Down returns the nodes marked down, sorted, as this replica last
// applied them.
func (f *FSM) Down() []string {
	return slices.Sorted(maps.Keys(f.members().down))
}

// admitDown checks mark_down on the leader before it is proposed and
// takes its nodes out of the meta group's configuration: refused when a
// node is not in the map, leads the meta group (this node) or answers
// the probe (alive: evacuate it instead); then the gate for the other
// members. A node that is out of the configuration already is not
// removed again.
func (g *Group) admitDown(ctx context.Context, c Command) error {
	m := g.fsm.members()
	for _, n := range c.Nodes {
		if _, ok := m.nodes[n]; !ok && !m.down[n] {
			return fmt.Errorf("%w: %w: no node %q", ErrRefused, ErrNotFound, n)
		}
		if n == g.cfg.ID {
			return fmt.Errorf("%w: node %q leads the meta group: it is not down", ErrRefused, n)
		}
	}
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("%w: meta configuration: %w", ErrNotLeader, err)
	}
	addr := map[string]raft.ServerAddress{}
	for _, s := range f.Configuration().Servers {
		addr[string(s.ID)] = s.Address
	}
	probe := map[string]raft.ServerAddress{}
	for _, n := range c.Nodes {
		probe[n] = raft.ServerAddress(m.nodes[n].Raft)
		if a, ok := addr[n]; ok {
			probe[n] = a
		}
	}
	for n, res := range g.probeAll(ctx, probe) {
		if res.err == nil {
			return fmt.Errorf("%w: node %q answers (it reads level %d): it is not down; evacuate it alive (gsdctl node evacuate), or stop it first", ErrRefused, n, res.a.Reads)
		}
	}
	if err := g.gateExcept(ctx, c, c.Nodes); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if _, ok := addr[n]; !ok {
			continue
		}
		if err := g.raft.RemoveServer(raft.ServerID(n), 0, g.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("%w: take %s out of the meta group: %w", ErrNotLeader, n, err)
		}
		delete(g.memberMarks, n)
		g.log.Info("took a node marked down out of the meta group", "node", n)
	}
	return nil
}

// probed is one member's answer to the probe, or why there was none.
type probed struct {
	a   probeAnswer
	err error
}

// probeAll probes the members at addrs at once (a member that does not
// answer costs up to probeTimeout, not that many times over).
func (g *Group) probeAll(ctx context.Context, addrs map[string]raft.ServerAddress) map[string]probed {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var mu sync.Mutex
	out := make(map[string]probed, len(addrs))
	var wg sync.WaitGroup
	for id, addr := range addrs {
		wg.Go(func() {
			a, err := g.probeMember(ctx, addr)
			mu.Lock()
			out[id] = probed{a, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// joinable returns which of the nodes ids (at addr) the leader may add
// to the meta group: those that answer the probe with at least this
// binary's read level, so that no entry of this log and no snapshot of
// this state is one they cannot read. A node that does not answer
// (not started yet, or down) waits for the next tick.
func (g *Group) joinable(ids []string, addr map[string]raft.ServerAddress) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	probe := map[string]raft.ServerAddress{}
	for _, id := range ids {
		probe[id] = addr[id]
	}
	out := map[string]bool{}
	for id, res := range g.probeAll(g.stopCtx, probe) {
		switch {
		case res.err != nil:
			g.log.Debug("a node to add to the meta group does not answer", "node", id, "err", res.err)
		case res.a.Reads < readsLevel:
			g.log.Warn("a node of the map reads an older meta log: not added to the meta group until it is upgraded", "node", id, "reads", res.a.Reads, "need", readsLevel)
		default:
			out[id] = true
		}
	}
	return out
}
