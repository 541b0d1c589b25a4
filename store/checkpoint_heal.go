package store

import (
	"context"
	"errors"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
)

// Divergence events and healing (issue 12).
//
// Event. A leader that accepts a mismatch report proposes fsm.CmdDivergence
// (log version 9: refused by the version gate until every voter reads it),
// so the finding "replica X diverged at the checkpoint of index N" becomes
// an event in the world's feed on every replica alike: once per world and
// replica while this node leads (a diverged replica reports at every
// checkpoint until it is healed). Against itself (a majority reported),
// the leader proposes it naming itself before it steps down.
//
// Healing (Config.HealReplica set; gsd --checkpoint-heal). When a voter's
// report leaves it in the minority (this leader's hash agrees with a
// majority of the voters, or it would have stepped down), the leader:
//  1. removes the voter (RemoveServer), so that it no longer counts and
//     its log is not the leader's to fix;
//  2. calls HealReplica: the node moves the group's data directory aside
//     (kept for forensics) and starts the group empty;
//  3. adds it again (AddVoter), so it installs a snapshot of the majority
//     or replays the majority's log. hashicorp/raft v1.7.3 cannot push a
//     snapshot to a follower that is up to date, hence the wipe.
//
// Guard rails: a heal starts only on the leader, for a report in the
// minority, and only once a majority of the voters (the leader
// included) confirm the leader's hash at that checkpoint
// (Config.ConfirmMark asks each other voter for its mark): the first
// report against a lying leader is a minority too, until the others'
// arrive, and a leader must never heal an honest replica. The answers
// also show that the voters needed to commit the removal and the re-add
// are up: a majority of the voters before the removal is at least a
// majority of those after it. At most one
// heal is in flight per group; none starts within
// Config.HealCooldown of the end of the last one (the healed node is
// still catching up then); and only with at least 3 voters, so that the
// voters left after the removal are a majority of the voters before it
// (3 voters: 2 of 2 must be up to commit the removal and the re-add; 2
// voters would leave 1, and a single voter never heals itself). A step
// that fails is logged, the heal counts as failed, and the leader still
// adds the node again so the group keeps its voters; a later checkpoint
// names it again if it is still odd. Outcomes are counted in
// gsd_checkpoint_heals_total{outcome}: healed, failed, skipped.

// DefaultHealCooldown is the least time between two heals of a group.
const DefaultHealCooldown = time.Minute

// noteDivergence proposes the event that node diverged at a checkpoint
// of world at index, once per world and node while this node leads.
func (s *Store) noteDivergence(world, node string, index uint64) {
	key := world + "\x00" + node
	s.checkMu.Lock()
	seen := s.noticed[key]
	s.noticed[key] = true
	s.checkMu.Unlock()
	if seen {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
	defer cancel()
	d := fsm.Divergence{World: world, Node: node, Index: index, Leader: s.cfg.ID}
	o, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdDivergence, Diverge: &d})
	if err == nil {
		err = o.res.Err
	}
	if err != nil {
		s.checkMu.Lock()
		delete(s.noticed, key) // a later report tries again
		s.checkMu.Unlock()
		s.log.Warn("record the checkpoint mismatch as a world event", "world", world, "replica", node, "index", index, "err", err)
		return
	}
	s.log.Info("checkpoint mismatch recorded as a world event", "world", world, "replica", node, "index", index, "seq", o.res.Event.Seq)
}

// forgetDivergences lets node's next divergence be recorded again: it was
// healed.
func (s *Store) forgetDivergences(node string) {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	for k := range s.noticed {
		if len(k) > len(node) && k[len(k)-len(node)-1:] == "\x00"+node {
			delete(s.noticed, k)
		}
	}
	for k, reporters := range s.reports {
		delete(reporters, node)
		if len(reporters) == 0 {
			delete(s.reports, k)
		}
	}
}

// maybeHeal starts healing m's reporter unless healing is off or a guard
// rail holds it back; voters is the group's voter count.
func (s *Store) maybeHeal(m CheckpointMismatch, voters int) {
	node := m.Node
	if s.cfg.HealReplica == nil {
		return
	}
	cooldown := s.cfg.HealCooldown
	if cooldown == 0 {
		cooldown = DefaultHealCooldown
	}
	var addr raft.ServerAddress
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			if string(srv.ID) == node {
				addr = srv.Address
			}
		}
	}
	info, _ := s.fsm.Node(node)
	s.healMu.Lock()
	var why string
	switch {
	case node == s.cfg.ID:
		why = "the leader never heals itself"
	case s.healing != "":
		why = "a heal of " + s.healing + " is in flight"
	case voters < 3:
		why = "fewer than 3 voters: removing one would leave no majority of the voters"
	case addr == "":
		why = "not in the configuration"
	case !s.healEnd.IsZero() && time.Since(s.healEnd) < cooldown:
		why = "within the cool-down of the last heal"
	}
	if why == "" {
		s.closeMu.Lock() // Close waits for s.wg under closeMu: no Add after its Wait
		if s.closed {
			why = "the store is closing"
		} else {
			s.healing = node
			s.wg.Add(1)
		}
		s.closeMu.Unlock()
	}
	s.healMu.Unlock()
	if why != "" {
		s.metrics.heals.WithLabelValues("skipped").Inc()
		s.log.Warn("checkpoint heal skipped", "replica", node, "reason", why)
		return
	}
	if info.ID == "" {
		info.ID = node
	}
	go s.heal(m, info, addr)
}

// heal confirms this leader's hash with a majority, then removes node,
// has it wipe the group and adds it again.
func (s *Store) heal(m CheckpointMismatch, node fsm.NodeInfo, addr raft.ServerAddress) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // Close cancels the heal's waits
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ran := s.confirmed(ctx, m)
	outcome := "skipped"
	if ran {
		outcome = s.runHeal(ctx, node, addr)
	}
	s.metrics.heals.WithLabelValues(outcome).Inc()
	if outcome == "healed" {
		s.forgetDivergences(node.ID)
	}
	s.healMu.Lock()
	s.healing = ""
	if ran {
		s.healEnd = time.Now()
	}
	s.healMu.Unlock()
}

// confirmed reports whether a majority of the voters, this leader
// included, hold the hash this leader's checkpoint carried at m.Index:
// only then is m's reporter the odd one for sure.
func (s *Store) confirmed(ctx context.Context, m CheckpointMismatch) bool {
	own, known := s.fsm.MarkOf(m.World, m.Index)
	if !known || own != m.LeaderHash {
		s.log.Warn("checkpoint heal skipped", "replica", m.Node, "reason", "this leader holds no mark of its own at the checkpoint")
		return false
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		s.log.Warn("checkpoint heal skipped", "replica", m.Node, "reason", "no configuration", "err", raftError(err))
		return false
	}
	voters, agree := 0, 0
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage != raft.Voter {
			continue
		}
		voters++
		id := string(srv.ID)
		switch {
		case id == s.cfg.ID:
			agree++
		case id == m.Node:
		default:
			n, ok := s.fsm.Node(id)
			if !ok {
				n = fsm.NodeInfo{ID: id}
			}
			cctx, ccancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
			h, known, err := s.cfg.ConfirmMark(cctx, s.cfg.GroupID, n, m.World, m.Index)
			ccancel()
			if err != nil {
				s.log.Warn("checkpoint heal: ask a voter for its hash", "voter", id, "err", err)
			}
			if err == nil && known && h == m.LeaderHash {
				agree++
			}
		}
	}
	if agree <= voters/2 {
		s.log.Warn("checkpoint heal skipped", "replica", m.Node, "reason", "no majority of the voters confirmed this leader's hash",
			"confirmed", agree, "voters", voters)
		return false
	}
	return true
}

// CheckpointMark returns this replica's hash of world at the checkpoint
// of log index index, when it holds that mark (fsm.FSM.MarkOf): what a
// healing leader asks the other voters (Config.ConfirmMark).
func (s *Store) CheckpointMark(world string, index uint64) (uint64, bool) {
	return s.fsm.MarkOf(world, index)
}

// runHeal runs the three steps and returns the outcome.
func (s *Store) runHeal(ctx context.Context, node fsm.NodeInfo, addr raft.ServerAddress) string {
	id := raft.ServerID(node.ID)
	s.log.Warn("checkpoint heal: removing the odd replica", "replica", node.ID)
	if err := s.raft.RemoveServer(id, 0, s.cfg.ApplyTimeout).Error(); err != nil {
		s.log.Error("checkpoint heal: remove the odd replica", "replica", node.ID, "err", raftError(err))
		return "failed"
	}
	hctx, hcancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	healErr := s.cfg.HealReplica(hctx, s.cfg.GroupID, node)
	hcancel()
	if healErr != nil {
		s.log.Error("checkpoint heal: the odd replica did not take the order to wipe; adding it again as it is", "replica", node.ID, "err", healErr)
	} else {
		s.log.Warn("checkpoint heal: the odd replica wipes its state; adding it again", "replica", node.ID)
	}
	for {
		err := s.raft.AddVoter(id, addr, 0, s.cfg.ApplyTimeout).Error()
		if err == nil {
			break
		}
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
			s.log.Error("checkpoint heal: lost leadership before adding the replica again; it rejoins with its join address or `gsdctl join`", "replica", node.ID, "err", err)
			return "failed"
		}
		s.log.Warn("checkpoint heal: add the replica again", "replica", node.ID, "err", err)
		select {
		case <-ctx.Done():
			return "failed"
		case <-time.After(time.Second):
		}
	}
	if healErr != nil {
		return "failed"
	}
	s.log.Info("checkpoint heal: the replica is a voter again and catches up from the majority", "replica", node.ID)
	return "healed"
}
