package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/hashicorp/raft"
)

// Hash checkpoints (fsm/checkpoint.go). With Config.CheckpointInterval set,
// the leader proposes, every interval, one fsm.CmdCheckpoint per world that
// changed since its last one: it carries the leader's hash at the world's
// previous checkpoint, and every replica compares it with its own on apply.
// A replica whose hash differs counts it (gsd_checkpoint_mismatches_total),
// logs an error naming itself, the world, the index and both hashes, and
// calls Config.OnCheckpointMismatch.
//
// Naming and healing. Each replica compares itself with the leader only,
// so the odd one is named by who reports: a follower that mismatches while
// the others match is odd; when a majority of the voters mismatch, the
// leader is (a lying leader's own checkpoints agree with itself). The
// daemon forwards a follower's mismatch to the leader (ReportMismatch);
// once reports against one of its checkpoints come from a majority of the
// voters, the leader logs that it is the odd replica and hands leadership
// to another voter. Either way the leader records the finding as an event
// on the world (fsm.CmdDivergence, checkpoint_heal.go). Healing an odd
// follower is automatic with Config.HealReplica (checkpoint_heal.go), else
// manual: remove the odd node, wipe its data directory and add it again,
// so it installs a snapshot from the majority (hashicorp/raft v1.7.3
// cannot push a snapshot to a follower that is up to date).

// CheckpointMismatch is one replica's finding that its hash of a world at
// a checkpoint's log index differs from the leader's.
type CheckpointMismatch struct {
	Node       string // the replica that found it
	World      string
	Index      uint64 // the log index both hashes are of
	Leader     string // who proposed the checkpoint
	LeaderHash uint64
	Local      uint64 // Node's hash
}

// checkpointApplied is the adapter's hook for every applied checkpoint:
// it runs on Raft's apply goroutine, so it only counts, logs and calls the
// configured callback (which must not block).
func (s *Store) checkpointApplied(r *fsm.CheckpointResult) {
	if r.Known {
		s.metrics.checkpointsCompared.Inc()
	}
	if !r.Mismatch() {
		return
	}
	m := CheckpointMismatch{Node: s.cfg.ID, World: r.World, Index: r.Index, Leader: r.Leader, LeaderHash: r.Hash, Local: r.Local}
	s.metrics.checkpointMismatches.Inc()
	s.log.Error("checkpoint mismatch: this replica's state differs from the leader's",
		"world", m.World, "index", m.Index, "leader", m.Leader,
		"leader_hash", wire.HashString(m.LeaderHash), "hash", wire.HashString(m.Local))
	if s.cfg.OnCheckpointMismatch != nil {
		s.cfg.OnCheckpointMismatch(m)
	}
}

// ReportMismatch records, on the leader, a voter's mismatch against one
// of this leader's checkpoints. When the voters reporting against the same
// checkpoint make a majority, this leader is the odd replica: it logs so
// and transfers leadership, and ReportMismatch returns true; below that,
// the reporters are the odd ones and the leader logs their names. Reports
// about another leader's checkpoint, or from a node that is not a voter,
// are ignored. Each reporter of a checkpoint is counted once in
// gsd_checkpoint_mismatch_reports_total, by what its report made of the
// checkpoint (minority or majority), and the reports are shown in Status
// (LastMismatch). A reporter's report again (a retry) is answered as the
// first, and a majority's leader tries the hand-over again. Errors:
// ErrNotLeader.
func (s *Store) ReportMismatch(m CheckpointMismatch) (bool, error) {
	if s.raft.State() != raft.Leader {
		return false, ErrNotLeader
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, raftError(err)
	}
	voters, known := 0, false
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voters++
			known = known || string(srv.ID) == m.Node
		}
	}
	if m.Leader != s.cfg.ID || !known {
		return false, nil
	}
	key := checkpointKey{world: m.World, index: m.Index}
	s.checkMu.Lock()
	for k := range s.reports {
		if k.world == key.world && k.index < key.index {
			delete(s.reports, k) // a newer checkpoint of the world supersedes it
		}
	}
	if s.reports[key] == nil {
		s.reports[key] = make(map[string]uint64)
	}
	_, again := s.reports[key][m.Node]
	s.reports[key][m.Node] = m.Local
	n := len(s.reports[key])
	majority := n > voters/2
	s.lastMis = mismatchReport(m, s.reports[key], voters, majority)
	s.checkMu.Unlock()
	outcome := "minority"
	if majority {
		outcome = "majority"
	}
	if !again { // a reporter's retry is the same report
		s.metrics.mismatchReports.WithLabelValues(outcome).Inc()
	}
	if !majority {
		s.log.Warn("checkpoint mismatch reported: the reporting replica's state differs from this leader's",
			"replica", m.Node, "world", m.World, "index", m.Index,
			"leader_hash", wire.HashString(m.LeaderHash), "hash", wire.HashString(m.Local))
		if !again {
			s.noteDivergence(m.World, m.Node, m.Index)
			s.maybeHeal(m, voters)
		}
		return false, nil
	}
	s.log.Error("checkpoint mismatch reported by a majority: this leader is the odd replica; stepping down",
		"world", m.World, "index", m.Index, "reporters", n, "voters", voters)
	if !again {
		s.noteDivergence(m.World, s.cfg.ID, m.Index)
	}
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return false, fmt.Errorf("step down after checkpoint mismatch: %w", raftError(err))
	}
	return true, nil
}

// mismatchReport is what Status shows of the reports against one
// checkpoint of this leader: reporters maps each reporter to its hash.
func mismatchReport(m CheckpointMismatch, reporters map[string]uint64, voters int, majority bool) *wire.MismatchReport {
	r := &wire.MismatchReport{World: m.World, Index: m.Index, Leader: m.Leader, LeaderHash: wire.Hash(wire.HashString(m.LeaderHash)),
		Voters: voters, Majority: majority, Time: time.Now().UTC()}
	for node, h := range reporters {
		r.Reporters = append(r.Reporters, wire.MismatchReporter{Node: node, Hash: wire.Hash(wire.HashString(h))})
	}
	slices.SortFunc(r.Reporters, func(a, b wire.MismatchReporter) int { return strings.Compare(a.Node, b.Node) })
	return r
}

// lastMismatch returns a copy of the last mismatch report, or nil.
func (s *Store) lastMismatch() *wire.MismatchReport {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	if s.lastMis == nil {
		return nil
	}
	r := *s.lastMis
	r.Reporters = slices.Clone(r.Reporters)
	return &r
}

// checkpointKey names one checkpoint: a world and the log index of the
// hash it carried.
type checkpointKey struct {
	world string
	index uint64
}

// proposeCheckpoints runs on the leader every interval until stop.
func (s *Store) proposeCheckpoints(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	carried := make(map[string]uint64) // world -> hash of the latest mark carried
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if !s.ready.Load() {
			clear(carried) // a new term: marks start over from this node's
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
		s.checkpointRound(ctx, carried)
		cancel()
	}
}

// checkpointRound proposes the checkpoints of one interval: for each world,
// unless it is unchanged since a mark it already carried.
func (s *Store) checkpointRound(ctx context.Context, carried map[string]uint64) {
	for _, w := range s.fsm.Worlds() {
		c, current, ok := s.fsm.CheckpointOf(w.ID, s.cfg.ID)
		if !ok {
			continue // deleted meanwhile
		}
		if h, seen := carried[w.ID]; c.Index != 0 && current && seen && h == c.Hash {
			continue
		}
		_, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdCheckpoint, Check: &c})
		if errors.Is(err, ErrVersionGate) {
			return // a voter reads no checkpoints yet: no world's would do
		}
		if err != nil {
			s.log.Warn("propose checkpoint", "world", w.ID, "err", err)
			return
		}
		if c.Index != 0 {
			carried[w.ID] = c.Hash
		}
	}
}
