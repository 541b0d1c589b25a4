package meta

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// The meta group's own members follow the map's nodes (Config.Voters):
// its leader, from the report loop, adds every node of the map as a
// nonvoter, promotes caught-up nonvoters until the group has the voters
// it keeps (metaVoters), spread over regions, and removes the servers
// remove_node took out of the map (State.Removed), a voter only while
// the voters the map lists are as many as it keeps, so a removal never
// takes the group below them. A member the map does not list and did
// not remove (a map built one add_node at a time) stays. A leader the
// map removed takes the other steps, then hands its leadership to a
// voter the map lists, which removes it. Every step is decided from
// the map and the configuration as they are, so a leader that crashed
// between steps, or a new one, takes the next step alike.

// metaVoters returns how many voters the meta group keeps with n nodes
// in the map: at most want, and from 3 on an odd count (an even one
// survives no more failures than one fewer and needs a larger quorum).
// With want 5: 5 from 5 nodes on, 3 with 3 or 4, all with fewer, as gsd
// forms the group (cmd/gsd's metaServers).
func metaVoters(want, n int) int {
	v := min(want, n)
	if v > 2 && v%2 == 0 {
		v--
	}
	return v
}

// memberSteps decides what the meta leader (self) does next to bring the
// meta group's configuration to the map's nodes m, keeping want voters
// at most (metaVoters). caught reports whether a nonvoter caught up with
// the leader; it is asked only of the nonvoters promotion needs. An
// empty map (not seeded yet) changes nothing.
//
// Removals come first, then adds, address changes and promotions: a
// step the leader cannot take (an add refused while a removed member
// still holds its address) must not hold up the others (followMap goes
// on past a failed step). A leader the map removed takes every other
// step, promotions too, and then hands its leadership to a voter the map
// lists (a stepTransfer names it), which removes it: not to any voter,
// which may be removed too and hand it back.
func memberSteps(self string, m members, config []raft.Server, caught func(id string) bool, want int) []step {
	nodes := m.nodes
	if len(nodes) == 0 {
		return nil
	}
	in := map[string]raft.ServerSuffrage{}
	have := 0 // the voters the map lists
	inRegion := map[string]int{}
	var voters []string // the voters the map lists, sorted
	for _, s := range config {
		id := string(s.ID)
		in[id] = s.Suffrage
		if n, ok := nodes[id]; ok && s.Suffrage == raft.Voter {
			have++
			inRegion[n.Region]++
			voters = append(voters, id)
		}
	}
	slices.Sort(voters)
	target := metaVoters(want, len(nodes))
	var out []step
	for _, s := range config {
		id := string(s.ID)
		if !m.leaves(id) || id == self {
			continue // listed, or not listed yet; a removed leader hands on first
		}
		if s.Suffrage == raft.Voter && have < target {
			continue // promote a replacement first
		}
		out = append(out, step{stepRemove, id})
	}
	var candidates []string
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		switch s, ok := in[id]; {
		case !ok:
			out = append(out, step{stepAddNonvoter, id})
		case s != raft.Voter:
			candidates = append(candidates, id)
		}
	}
	for _, s := range config {
		if n, ok := nodes[string(s.ID)]; ok && string(s.Address) != n.Raft {
			out = append(out, step{stepAddress, string(s.ID)}) // add_node again with another address
		}
	}
	if have < target {
		candidates = slices.DeleteFunc(candidates, func(id string) bool { return !caught(id) })
	} else {
		candidates = nil
	}
	for v := have; v < target && len(candidates) > 0; v++ {
		// A region with the fewest voters, then the lowest id.
		best := slices.MinFunc(candidates, func(a, b string) int {
			return cmp.Or(cmp.Compare(inRegion[nodes[a].Region], inRegion[nodes[b].Region]), cmp.Compare(a, b))
		})
		out = append(out, step{stepPromote, best})
		voters = append(voters, best)
		inRegion[nodes[best].Region]++
		candidates = slices.DeleteFunc(candidates, func(id string) bool { return id == best })
	}
	if m.leaves(self) && len(voters) > 0 {
		// The map dropped the leader: the lowest listed voter (one it
		// just promoted if none voted before) takes over and removes it.
		out = append(out, step{stepTransfer, voters[0]})
	}
	return out
}

// following reports whether the leader keeps the members to the map: it
// is configured to (Voters) and the map is seeded.
func (g *Group) following() bool {
	return g.cfg.Voters > 0 && len(g.fsm.View().Map.Nodes) > 0
}

// followMap takes the meta leader's membership steps (memberSteps).
// Once per term it first waits for its FSM to apply what earlier
// leaders committed (a Barrier): a new leader's map can lag its log,
// and a step decided from it (removing a member that a committed
// add_node listed again) would be wrong. A new term also starts the
// nonvoters' marks and the prober's answers afresh: those of an earlier
// leadership (this node's, before it lost it) say nothing of this
// leader's log.
func (g *Group) followMap() {
	term := g.raft.CurrentTerm()
	if term != g.barrierTerm {
		if err := g.raft.Barrier(g.cfg.ApplyTimeout).Error(); err != nil {
			g.log.Debug("wait for the meta FSM before changing members", "err", err)
			return
		}
		g.barrierTerm = term
		clear(g.memberMarks)
	}
	g.prober.lead(term)
	f := g.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	m := g.fsm.members()
	config := f.Configuration().Servers
	addr := map[string]raft.ServerAddress{}
	for _, s := range config {
		addr[string(s.ID)] = s.Address
	}
	// A member taken out (here, or by admitDown on a request's
	// goroutine, which must not touch the loop's marks), or one the map
	// removed or marked down, starts afresh if it is ever added back:
	// no answer or mark from before counts then (Group.apply forgets
	// the prober's answers as soon as the leader applies the command).
	maps.DeleteFunc(g.memberMarks, func(id string, _ memberMark) bool { _, in := addr[id]; return !in || m.leaves(id) })
	g.prober.forget(m.leaves)
	for id, n := range m.nodes {
		addr[id] = raft.ServerAddress(n.Raft)
	}
	// Promotion needs to know which nonvoters caught up: ask them only
	// then (the prober's latest answers; no tick waits for a probe).
	have := 0
	var nonvoters []string
	for _, s := range config {
		if _, ok := m.nodes[string(s.ID)]; !ok {
			continue
		}
		if s.Suffrage == raft.Voter {
			have++
		} else {
			nonvoters = append(nonvoters, string(s.ID))
		}
	}
	var caught map[string]bool
	// The marks the nonvoters are caught up against: a promotion checks
	// its fresh answer against the same one (promote).
	marks := maps.Clone(g.memberMarks)
	if have < metaVoters(g.cfg.Voters, len(m.nodes)) {
		caught = g.caughtNonvoters(nonvoters, addr)
	}
	steps := memberSteps(g.cfg.ID, m, config, func(id string) bool { return caught[id] }, g.cfg.Voters)
	var adds []string
	for _, s := range steps {
		if s.kind == stepAddNonvoter {
			adds = append(adds, s.node)
		}
	}
	join := g.joinable(adds, addr)
	failed := map[string]bool{}
	for _, s := range steps {
		if failed[s.node] {
			continue // a handover to a node whose promotion failed
		}
		if s.kind == stepAddNonvoter && !join[s.node] {
			continue // not answering, or reading an older log (down.go)
		}
		var err error
		switch s.kind {
		case stepAddNonvoter:
			// Still a node of the map, not marked down, at this address.
			var added bool
			added, err = g.addNonvoter(term, s.node, addr[s.node], func(m members) bool {
				n, ok := m.nodes[s.node]
				return ok && !m.leaves(s.node) && raft.ServerAddress(n.Raft) == addr[s.node]
			})
			if err == nil && !added {
				continue
			}
		case stepPromote:
			var promoted bool
			promoted, err = g.promote(term, s.node, addr[s.node], marks[s.node].index)
			if err == nil && !promoted {
				failed[s.node] = true // no handover to it either
				continue
			}
		case stepRemove:
			err = g.raft.RemoveServer(raft.ServerID(s.node), 0, g.cfg.ApplyTimeout).Error()
			delete(g.memberMarks, s.node)
		case stepTransfer:
			err = g.raft.LeadershipTransferToServer(raft.ServerID(s.node), addr[s.node]).Error()
		case stepAddress:
			// Adding a member that is one already takes the new address
			// and keeps its suffrage (AddNonvoter never demotes a voter).
			err = g.raft.AddNonvoter(raft.ServerID(s.node), addr[s.node], 0, g.cfg.ApplyTimeout).Error()
		}
		if err != nil {
			g.log.Warn("change the meta group's members", "step", s.kind, "node", s.node, "err", err)
			failed[s.node] = true
			continue // the next tick tries it again; the other steps need not wait
		}
		g.log.Info("change the meta group's members", "step", s.kind, "node", s.node)
	}
}

// addNonvoters adds the nonvoters of Servers that the meta group's
// configuration lacks (they cannot bootstrap themselves), once they
// answer the probe with this binary's read level (joinable): one back
// on an older gsd would get entries it cannot read.
func (g *Group) addNonvoters() {
	term := g.raft.CurrentTerm()
	g.prober.lead(term)
	f := g.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	have := map[raft.ServerID]bool{}
	for _, s := range f.Configuration().Servers {
		have[s.ID] = true
	}
	m := g.fsm.members()
	var ids []string
	addr := map[string]raft.ServerAddress{}
	for _, s := range g.cfg.Servers {
		if s.Suffrage != raft.Nonvoter || have[s.ID] || m.leaves(string(s.ID)) {
			continue // a member, or removed or marked down: never added back
		}
		ids = append(ids, string(s.ID))
		addr[string(s.ID)] = s.Address
	}
	join := g.joinable(ids, addr)
	for _, id := range ids {
		if !join[id] {
			continue // not answering, or reading an older log (down.go)
		}
		if _, err := g.addNonvoter(term, id, addr[id], func(m members) bool { return !m.leaves(id) }); err != nil {
			g.log.Debug("add meta nonvoter", "id", id, "err", err)
		}
	}
}

// confirmWait is the least the fresh probe that confirms a node right
// before the meta leader adds or promotes it (confirmed) may take: the
// node answered the prober a moment ago, so it answers about as fast
// again; the probe may take twice as long as that answer took, up to
// the probe timeout (prober.confirm), so a far node (a dial and TLS
// handshake over a long round trip) is confirmed too. One that does not
// answer now is not added or promoted this tick, and is no candidate
// until it answers the prober again.
const confirmWait = 500 * time.Millisecond

// addNonvoter adds node id at addr to the meta group as a nonvoter, in
// the leadership term the tick that nominated it began in, and reports
// whether it did, on a fresh answer with this binary's read level
// (confirmed): joinable only nominates it.
func (g *Group) addNonvoter(term uint64, id string, addr raft.ServerAddress, want func(members) bool) (bool, error) {
	return g.confirmed(term, id, addr, want, func(probeAnswer) bool { return true }, func() error {
		return g.raft.AddNonvoter(raft.ServerID(id), addr, 0, g.cfg.ApplyTimeout).Error()
	})
}

// promote makes the meta nonvoter id at addr a voter, in the leadership
// term the tick that nominated it began in, and reports whether it did,
// on a fresh answer (confirmed) that has it applied the log up
// to mark, the mark caughtNonvoters found it caught up against: the
// prober's answer that nominated it may be a few ticks old, and a
// nonvoter that died (or was wiped) since would be a dead voter, one
// fewer failure the group survives. It must still be a node of the map,
// not marked down or removed, and a nonvoter of the configuration: a
// mark_down admitted meanwhile took it out, and AddVoter would put it
// back.
func (g *Group) promote(term uint64, id string, addr raft.ServerAddress, mark uint64) (bool, error) {
	want := func(m members) bool {
		n, ok := m.nodes[id]
		return ok && !m.leaves(id) && raft.ServerAddress(n.Raft) == addr && g.nonvoter(id)
	}
	caught := func(a probeAnswer) bool {
		if a.Applied < mark {
			g.log.Debug("a meta nonvoter to promote is behind its mark now", "node", id, "applied", a.Applied, "mark", mark)
			return false
		}
		return true
	}
	return g.confirmed(term, id, addr, want, caught, func() error {
		return g.raft.AddVoter(raft.ServerID(id), addr, 0, g.cfg.ApplyTimeout).Error()
	})
}

// nonvoter reports whether the meta configuration holds id as a
// nonvoter.
func (g *Group) nonvoter(id string) bool {
	f := g.raft.GetConfiguration()
	_ = f.Error() // waits for it; a failed one holds no server: not a nonvoter
	return slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool {
		return string(s.ID) == id && s.Suffrage != raft.Voter
	})
}

// confirmed takes a member step for node id at addr (change: an add or
// a promotion) and reports whether it did. The prober's answers only
// nominate a node; the step needs more, checked right before it:
//
//   - no mark_down is being admitted (markingDown): admitDown decides
//     from the configuration whether to take its nodes out before the
//     mark, and a step it did not see would put a node back (or give a
//     vote to one) that it is about to mark;
//   - want holds of the map as the FSM has it now (not marked down, not
//     removed), before the probe and after it;
//   - the node answers a fresh probe (prober.confirm, within twice its
//     last answer's time, at least confirmWait) with this binary's read level, and ok holds of that
//     answer: one that answered the prober and then died or came back
//     on an older gsd gets no step;
//   - the leadership term is still term, the one the tick that
//     nominated the node began in (checked after the probe, right
//     before the step): a leader that lost its leadership and won it
//     back meanwhile would step on a mark or an answer of the earlier
//     term, which say nothing of this one's log.
//
// downMu is held throughout, so a mark_down admitted next sees the step
// in the configuration, and one being admitted holds the step off until
// its mark applied.
func (g *Group) confirmed(term uint64, id string, addr raft.ServerAddress, want func(members) bool, ok func(probeAnswer) bool, change func() error) (bool, error) {
	g.downMu.Lock()
	defer g.downMu.Unlock()
	if g.markingDown > 0 {
		g.log.Debug("a meta member step waits: a mark_down is being admitted", "node", id)
		return false, nil
	}
	if !want(g.fsm.members()) {
		return false, nil
	}
	r := g.prober.confirm(id, addr, g.probeWait())
	switch {
	case r.err != nil:
		g.log.Debug("a node of a meta member step does not answer now", "node", id, "err", r.err)
		return false, nil
	case r.a.Reads < readsLevel:
		g.log.Warn("a node of the map reads an older meta log: not added to the meta group or promoted until it is upgraded", "node", id, "reads", r.a.Reads, "need", readsLevel)
		return false, nil
	case !ok(r.a), !want(g.fsm.members()):
		return false, nil // behind, or marked down or removed while it was probed
	case g.raft.CurrentTerm() != term:
		g.log.Debug("a meta member step waits: the leadership term changed since the tick began", "node", id, "term", term)
		return false, nil
	}
	return true, change()
}

// markDown tells confirmed that a mark_down is being admitted and
// proposed, until the returned func is called (once it applied, or
// failed). It waits for an add or a promotion in progress: admitDown
// then sees it in the configuration.
func (g *Group) markDown() (done func()) {
	g.downMu.Lock()
	g.markingDown++
	g.downMu.Unlock()
	return func() {
		g.downMu.Lock()
		g.markingDown--
		g.downMu.Unlock()
	}
}

// admit refuses, on the leader before it proposes, a command the FSM
// would apply but the meta group's members could not follow: add_node
// with a Raft address another node of the map has (raft refuses a
// second member at an address, "found duplicate address in
// configuration"), and add_node of a node marked down that is still a
// voter of a shard (checkBack). It is checked on the leader's replica,
// not in Apply, so a replica on an older binary applies the same
// entries. Then the gate.
func (g *Group) admit(ctx context.Context, c Command) error {
	if c.Op == OpAddNode {
		m := g.fsm.members()
		for _, id := range slices.Sorted(maps.Keys(m.nodes)) {
			if id != c.Node && m.nodes[id].Raft == c.Raft {
				return fmt.Errorf("%w: node %q has the Raft address %s already: remove it first, or give %q another address", ErrRefused, id, c.Raft, c.Node)
			}
		}
		if err := g.checkBack(c.Node, m); err != nil {
			return err
		}
	}
	if c.Op == OpReplaceVoter && c.New != "" {
		if err := g.checkJoiner(ctx, c); err != nil {
			return err
		}
	}
	if c.Op == OpMarkDown {
		return g.admitDown(ctx, c)
	}
	return g.gate(ctx, c)
}

// checkJoiner refuses replace_voter naming as New a node that the
// shard's Raft configuration, as the shard's leader has it, still holds
// as a voter although the map does not (a voter just replaced out,
// which the shard's leader has not removed yet): joining, it would keep
// its data (joindir.go), but the operator asked for a node the shard is
// leaving. A leader that does not answer (down, or an older gsd) lets it
// through. The same replacement again passes (it is answered as the
// first time). The FSM's own pick (New empty) is not checked here.
func (g *Group) checkJoiner(ctx context.Context, c Command) error {
	if r, ok := g.fsm.Replacements()[c.Shard]; ok && r.New == c.New {
		return nil
	}
	v := g.fsm.View()
	leader := v.Leaders[c.Shard]
	sh, ok := v.Map.Shard(c.Shard)
	if leader == "" || !ok || slices.Contains(sh.Voters, c.New) {
		return nil // no leader known; the FSM refuses a voter of the map
	}
	a, err := g.askShardLeader(ctx, c.Shard, leader)
	if err != nil || !slices.Contains(a.Voters, c.New) || !slices.ContainsFunc(sh.Voters, func(v string) bool { return slices.Contains(a.Voters, v) }) {
		return nil // not the shard's own group (one left from earlier lists none of its voters)
	}
	return fmt.Errorf("%w: node %q is still a voter of shard %d's Raft group (replaced out of it, its leader has not removed it yet): try again once it has, or name another node", ErrRefused, c.New, c.Shard)
}

// caughtNonvoters returns which of the meta nonvoters ids have applied
// the log up to this leader's last index when they were last asked: an
// answer of the prober (prober.go) to a probe started after that mark
// was taken, so the applied index it carries was read on the member
// after the leader read its last index. Each such answer takes a new
// mark (this last index, and the prober's number before the probes this
// call starts), so a nonvoter is promoted once it trails by about one
// report interval. A nonvoter with no answer since its mark (its probe
// still in flight, or failed) is not caught up this tick. A member on
// an older binary answers no index and is never promoted. Caught up
// only nominates a nonvoter: promote confirms it on a fresh answer.
func (g *Group) caughtNonvoters(ids []string, addr map[string]raft.ServerAddress) map[string]bool {
	last := g.raft.LastIndex() // before the probes answers starts
	res, seq := g.prober.answers(ids, addr)
	out := map[string]bool{}
	for _, id := range ids {
		r, ok := res[id]
		mark, marked := g.memberMarks[id]
		if !ok || marked && r.seq <= mark.seq {
			continue // nothing asked since the mark has answered yet
		}
		if r.err != nil {
			g.log.Debug("ask a meta nonvoter how far it applied", "node", id, "err", r.err)
			continue
		}
		g.memberMarks[id] = memberMark{index: last, seq: seq}
		out[id] = marked && r.a.Applied >= mark.index
	}
	return out
}

// memberMark is the meta leader's last log index when it last took a
// nonvoter's answer, and the prober's probe number then: a later answer
// reflects the nonvoter's applied index after index was read.
type memberMark struct {
	index uint64
	seq   uint64
}

// appliedIndex is how far this replica applied the meta log: raft's
// applied index, which counts the configuration entries the FSM never
// sees (a log that ends with them would leave a nonvoter short of the
// leader's last index for good), or the FSM's, or the snapshot it
// restored, whichever is latest.
func (g *Group) appliedIndex() uint64 {
	return max(g.fsm.Applied(), g.raft.AppliedIndex(), g.snapshotIndex())
}

// members is the map's nodes that are not marked down, with their
// regions, the nodes remove_node took out of it and the nodes marked
// down, as a replica last applied them. The meta group's members follow
// nodes; removed and down ones leave it.
type members struct {
	nodes   map[string]Node
	removed map[string]bool
	down    map[string]bool
	all     map[string]Node // every node of the map, marked down or not
}

// leaves reports whether the meta leader takes id out of the meta
// group's configuration: removed from the map, or marked down.
func (m members) leaves(id string) bool { return m.removed[id] || m.down[id] }

// members returns the map's nodes and removed nodes.
func (f *FSM) members() members {
	if p := f.memberSet.Load(); p != nil {
		return *p
	}
	return members{}
}
