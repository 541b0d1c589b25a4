package meta

import (
	"context"
	"errors"
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
//     before it proposes mark_down, and only once the target cannot be
//     reached (a live member, of any version, is refused, also one
//     that accepts the connection and closes it, as a gsd from before
//     the probe does: it is evacuated alive, and the gate waits for it
//     as for any member).
//     Raft stops replicating to a server as soon as the configuration
//     entry that removes it is appended, so no entry after it, the mark
//     included, ever reaches the target.
//   - Nothing adds it back while it is marked down, and the leader adds
//     a node to the meta group only on a fresh answer to the probe with
//     this binary's read level (members.go's confirmed: the prober's
//     answers only nominate it, joinable; the leader then probes it
//     again right before AddNonvoter and re-reads the down marks and
//     removals from its FSM, after that probe; a promotion alike): a
//     node that comes back,
//     marked or not, takes the log from where it stopped or a snapshot
//     only if it reads everything this leader's log can hold, and one
//     that answered the prober and then died or came back on an older
//     gsd is not added on that answer.
//   - No add or promotion runs while a mark_down is admitted and
//     proposed (the leader's markingDown): one finished before
//     admitDown reads the configuration is in it, so the node is probed
//     and taken out (or the mark refused); one after it sees the mark
//     in the FSM.
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
// time. A replacement whose joiner is marked is dropped: only the
// joiner says voter_ready, so it could never finish, and it would hold
// the shard (one replacement at a time) and the joiner (remove_node
// refuses a joiner) for good. The map's voters are as before it; the
// shard's leader removes the joiner from the group's configuration as
// any server the map does not list. mark_down is a level-5 op, so no
// entry of an older log changes meaning.
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
	maps.DeleteFunc(s.Replacing, func(_ uint64, r Replacement) bool { return s.Down[r.New] })
	return Result{}, changed, nil
}

// checkDown checks a snapshot's down marks: nodes of the map.
func (s *State) checkDown() error {
	for n := range s.Down {
		if _, ok := s.Nodes[n]; !ok {
			return fmt.Errorf("down: no node %q", n)
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
		probe[n] = raft.ServerAddress(m.all[n].Raft) // m.nodes leaves out one marked already
		if a, ok := addr[n]; ok {
			probe[n] = a
		}
	}
	probed := g.probeAll(ctx, probe)
	if err := ctx.Err(); err != nil {
		// A probe cut short says nothing about the node: taking it for
		// down would take a live member out.
		return fmt.Errorf("probe the nodes to mark down: %w", err)
	}
	for _, n := range slices.Sorted(maps.Keys(probed)) { // the same node named every time
		switch res := probed[n]; {
		case res.err == nil:
			return fmt.Errorf("%w: node %q answers (it reads level %d): it is not down; evacuate it alive (gsdctl node evacuate), or stop it first", ErrRefused, n, res.a.Reads)
		case errors.Is(res.err, errNoProbeAnswer):
			return fmt.Errorf("%w: node %q accepts connections (%w): it is not down (a gsd from before the probe, or stalled); evacuate it alive (gsdctl node evacuate), or stop it first", ErrRefused, n, res.err)
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
	ctx, cancel := context.WithTimeout(ctx, g.probeWait())
	defer cancel()
	var mu sync.Mutex
	out := make(map[string]probed, len(addrs))
	var wg sync.WaitGroup
	for id, addr := range addrs {
		wg.Go(func() {
			a, err := g.probe(ctx, addr)
			mu.Lock()
			out[id] = probed{a, err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// joinable returns which of the nodes ids (at addr) the leader may try
// to add to the meta group: those whose latest answer to the prober's
// probe (prober.go), recent enough, has at least this binary's read
// level. They are candidates only: addNonvoter adds one on a fresh
// answer. It does not wait: a node that has not answered yet (just
// listed, its probe in flight), or whose latest probe failed (not
// started yet, down, stalled), waits for a later tick, so a blackholed
// node is never probed on the loop.
func (g *Group) joinable(ids []string, addr map[string]raft.ServerAddress) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	res, _ := g.prober.answers(ids, addr)
	out := map[string]bool{}
	for _, id := range ids {
		switch r, ok := res[id]; {
		case !ok:
		case r.err != nil:
			g.log.Debug("a node to add to the meta group does not answer", "node", id, "err", r.err)
		case r.a.Reads < readsLevel:
			g.log.Warn("a node of the map reads an older meta log: not added to the meta group until it is upgraded", "node", id, "reads", r.a.Reads, "need", readsLevel)
		default:
			out[id] = true
		}
	}
	return out
}

// checkBack refuses add_node of node while it is marked down and still
// a voter of a shard: a dead node is wiped before it serves again, and
// one added back with an empty log while the map still counts it as a
// voter would vote in its shards' groups with nothing, so writes they
// committed could be lost. Evacuate it first. It is the leader's check
// (admit), not Apply's: binaries that read level 5 and apply add_node
// as before then still agree.
func (g *Group) checkBack(node string, m members) error {
	if !m.down[node] {
		return nil
	}
	var seats []uint64
	for _, sh := range g.fsm.View().Map.Shards {
		if slices.Contains(sh.Voters, node) {
			seats = append(seats, sh.ID)
		}
	}
	if len(seats) == 0 {
		return nil
	}
	return fmt.Errorf("%w: node %q is marked down and still a voter of shards %v: evacuate it first (gsdctl node evacuate %s), then wipe it and add it again", ErrRefused, node, seats, node)
}
