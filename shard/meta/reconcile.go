package meta

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
)

// stepKind is one thing a shard's leader does to bring the group's Raft
// configuration to the meta map.
type stepKind int

const (
	stepAddNonvoter stepKind = iota + 1 // the joiner is not in the configuration: add it as a nonvoter
	stepPromote                         // the joiner caught up (voter_ready): make it a voter
	stepDone                            // the joiner votes: propose replace_done (the map drops the old voter)
	stepRemove                          // a server the map does not list: RemoveServer
	stepTransfer                        // this node leads but the map dropped it: hand the leadership on first
	stepAddress                         // a member's address is not the map's: take the map's (meta members only)
)

// String names the step in logs.
func (k stepKind) String() string {
	switch k {
	case stepAddNonvoter:
		return "add_nonvoter"
	case stepPromote:
		return "promote"
	case stepDone:
		return "replace_done"
	case stepRemove:
		return "remove"
	case stepTransfer:
		return "transfer_leadership"
	case stepAddress:
		return "address"
	}
	return fmt.Sprintf("step(%d)", int(k))
}

// step is one reconciliation step and the node it concerns.
type step struct {
	kind stepKind
	node string
}

// leaderSteps decides what the leader (self) of a shard does next, given
// the map's voters, the shard's replacement under way (nil: none) and the
// group's Raft configuration. While a replacement is under way it only
// moves the joiner on: nonvoter, then voter once ready, then the map's
// second state. With none, every server the map does not list leaves
// the configuration; the leader itself hands its leadership on first,
// so the removal is a successor's (a leader removing itself steps down
// without choosing one).
func leaderSteps(self string, voters []string, r *Replacement, config []raft.Server) []step {
	suffrage := map[string]raft.ServerSuffrage{}
	for _, s := range config {
		suffrage[string(s.ID)] = s.Suffrage
	}
	if r != nil {
		switch s, ok := suffrage[r.New]; {
		case !ok:
			return []step{{stepAddNonvoter, r.New}}
		case s == raft.Voter:
			return []step{{stepDone, r.New}}
		case r.Ready:
			return []step{{stepPromote, r.New}}
		}
		return nil // the joiner is catching up
	}
	// A voter leaves only while the configuration keeps at least as many
	// voters as the map lists: a leader whose meta replica is behind
	// (a map from before the replacement) must not remove the new voter.
	votes := 0
	for _, s := range config {
		if s.Suffrage == raft.Voter {
			votes++
		}
	}
	var out []step
	for _, s := range config {
		id := string(s.ID)
		if slices.Contains(voters, id) {
			continue
		}
		if s.Suffrage == raft.Voter {
			if votes <= len(voters) {
				continue
			}
			votes--
		}
		if id == self {
			return []step{{stepTransfer, id}}
		}
		out = append(out, step{stepRemove, id})
	}
	return out
}

// listed reports whether config lists self, voter or not.
func listed(self string, config []raft.Server) bool {
	return slices.ContainsFunc(config, func(s raft.Server) bool { return string(s.ID) == self })
}

// caughtUp reports whether a joiner that has applied the log up to
// applied holds everything up to mark, the shard leader's last index
// when it asked (0: not asked yet).
func caughtUp(mark, applied uint64) bool {
	return mark > 0 && applied >= mark
}

// removed reports whether a node the map dropped from a group (the
// replacement done, so the group's leader removes it) may stop the
// group and delete its data: its configuration no longer lists it, or
// it knows no leader (leader ""). The leader stops replicating to a
// server it removes, so the removed node often never gets the entry
// that removes it; it then loses its leader at its next heartbeat
// timeout. Stopping while the leader has not removed it yet leaves the
// configuration one more voter than the map, none of them lost. An
// empty configuration (not known yet) is not a removal.
func removed(self string, config []raft.Server, leader string) bool {
	return len(config) > 0 && (!listed(self, config) || leader == "")
}

// reconcile moves this node's part of every voter replacement on (run
// from the report loop with OpenShards): as a joiner it opens the shard
// without bootstrap and says when it caught up; as a shard's leader it
// takes leaderSteps; as a replaced voter it stops the group and deletes
// its data once the group's configuration no longer lists it.
func (g *Group) reconcile() {
	repl := g.fsm.Replacements()
	m := g.fsm.View().Map
	for _, id := range slices.Sorted(maps.Keys(repl)) {
		if r := repl[id]; r.New == g.cfg.ID {
			g.join(id, r)
		}
	}
	for _, id := range g.mgr.Groups() {
		sh, isShard := m.Shard(id)
		st, ok := g.mgr.Group(id)
		if !isShard || !ok || id == g.cfg.Membership {
			continue // a group the map does not hold keeps running, as before
		}
		config, err := st.Members()
		if err != nil {
			continue
		}
		var r *Replacement
		if x, ok := repl[id]; ok {
			r = &x
		}
		if st.IsLeader() {
			for _, s := range leaderSteps(g.cfg.ID, sh.Voters, r, config) {
				g.take(id, st, m, s)
			}
			continue
		}
		if !slices.Contains(sh.Voters, g.cfg.ID) && (r == nil || r.New != g.cfg.ID) && removed(g.cfg.ID, config, leaderID(st)) {
			ctx, cancel := context.WithTimeout(g.stopCtx, g.cfg.ApplyTimeout)
			err := g.mgr.DropGroup(ctx, id)
			cancel()
			if err != nil {
				g.log.Warn("drop a shard this node was replaced in", "shard", id, "err", err)
			} else {
				g.log.Info("dropped a shard this node was replaced in: its data is deleted", "shard", id)
			}
		}
	}
}

// join opens shard id, which this node joins, without bootstrap (it has
// no Raft state for it: the leader adds it; a directory left from
// earlier is set aside first, joindir.go), and proposes voter_ready
// once it caught up with the shard's leader (joinerCaughtUp).
func (g *Group) join(id uint64, r Replacement) {
	st, ok := g.mgr.Group(id)
	if ok && !r.Ready {
		// A group this node runs but did not open for this join (a
		// removed shard's, with the same id) is not the joiner's, unless
		// its configuration lists this node (joindir.go).
		ours, err := g.joinedHere(id, r)
		if err == nil && !ours {
			var config []raft.Server
			if config, err = st.Members(); err == nil {
				ours = g.liveMember(id, config)
			}
		}
		if err == nil && !ours {
			err = g.setAsideRunning(id, r)
		}
		if err != nil || !ours {
			if err != nil {
				g.log.Warn("set aside a shard's directory left from earlier", "shard", id, "err", err)
			}
			return
		}
	}
	if !ok {
		var err error
		if !r.Ready { // never set aside the data of a joiner that may vote
			err = g.prepareJoin(id, r)
		}
		if err == nil {
			_, err = g.mgr.Open(id, shard.GroupOptions{})
		}
		if err != nil && !errors.Is(err, shard.ErrGroupTaken) && !errors.Is(err, shard.ErrClosed) {
			g.log.Warn("open a shard this node joins", "shard", id, "err", err)
		}
		return
	}
	if r.Ready {
		delete(g.joinMarks, id)
		g.leaderAsks.take(id) // no use now
		return
	}
	if g.joinerCaughtUp(id, st, st.Status().AppliedIndex) {
		g.proposeStep(Command{Op: OpVoterReady, Shard: id, New: g.cfg.ID})
	}
}

// groupMembers is what reconciliation needs of a shard's group on this
// node (a store.Store): its Raft configuration and the leader's changes
// to it.
type groupMembers interface {
	Members() ([]raft.Server, error)
	AddNonvoter(ctx context.Context, id, addr string) error
	PromoteVoter(ctx context.Context, id, addr string) error
	RemoveMember(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context) error
	Leader() (id, httpAddr string)
}

// take carries out one leader step for shard id.
func (g *Group) take(id uint64, st groupMembers, m *shard.Map, s step) {
	ctx, cancel := context.WithTimeout(g.stopCtx, g.cfg.ApplyTimeout)
	defer cancel()
	var err error
	switch s.kind {
	case stepAddNonvoter:
		err = st.AddNonvoter(ctx, s.node, m.Nodes[s.node].Raft)
	case stepPromote:
		err = st.PromoteVoter(ctx, s.node, m.Nodes[s.node].Raft)
	case stepDone:
		r := g.fsm.Replacements()[id]
		g.proposeStep(Command{Op: OpReplaceDone, Shard: id, Node: r.Old, New: r.New})
		return
	case stepRemove:
		err = st.RemoveMember(ctx, s.node)
	case stepTransfer:
		err = st.TransferLeadership(ctx)
	}
	if err != nil {
		g.log.Warn("replace a shard voter", "shard", id, "step", s.kind, "node", s.node, "err", err)
		return
	}
	g.log.Info("replace a shard voter", "shard", id, "step", s.kind, "node", s.node)
}

// proposeStep proposes a replacement step in the background, unless the
// same step of the shard is in flight (background.go): the proposal
// waits on the meta leader, whose gate probes every member (forward.go),
// and a member that accepts the connection and never answers must not
// hold up the report loop. A refusal (a step another node took first)
// or a failure is logged; the next tick looks again.
func (g *Group) proposeStep(c Command) {
	g.proposals.start(&g.wg, stepKey{c.Op, c.Shard}, func() struct{} {
		ctx, cancel := context.WithTimeout(g.stopCtx, g.cfg.ApplyTimeout)
		defer cancel()
		if _, err := g.Propose(ctx, c); err != nil {
			g.log.Warn("propose a replacement step", "op", c.Op, "shard", c.Shard, "err", err)
		}
		return struct{}{}
	})
}

// stepKey names a replacement step the loop proposes: its op and shard.
type stepKey struct {
	op    Op
	shard uint64
}

// leaderID is the id of st's group's leader as this node knows it.
func leaderID(st groupMembers) string {
	id, _ := st.Leader()
	return id
}
