package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
)

// The version gate. A replica panics on a log entry it cannot decode
// (fsm.FSM.Apply), so a leader that wrote a command kind or an encoding
// some voter's binary does not read would crash that voter, and on restart
// it would meet the entry again. So every node reports the versions it
// reads (fsm.Versions), and propose refuses, with ErrVersionGate, a command
// that some member's versions do not cover (fsm.Needs).
//
// Reports reach the leader through Join (a node that joins, and the
// daemon's reporter for nodes that joined before they could report), and
// the leader's own through its config. The leader keeps them in memory at
// once, so the gate can open, and replicates them into the node table
// (fsm.CmdNodeVersions) as soon as every voter reads that command, so that
// the next leader knows them too. A member that never reported counts as
// fsm.Baseline(): the binaries from before the gate.
//
// The gate counts every server of the configuration, voters and
// non-voters alike: a non-voter (a shard's joiner while it catches up,
// shard/meta/reconcile.go) applies the same log and snapshots, and would
// crash-loop on an entry it cannot decode just as a voter would. The cost:
// a non-voter that never reported counts as the baseline, and a dead
// non-voter closes the gate for newer commands as a dead voter does, until
// it is removed (shard/meta drops a replacement whose joiner is marked
// down, and removes the joiner with it: shard/meta/down.go).
//
// The gate only looks at the members of the moment, so a member added
// later would receive the entries and snapshots written before it came.
// So adding one (Join, AddNonvoter, PromoteVoter) is refused, with
// ErrVersionGate, unless the new node's versions cover the group's floor:
// the per-component minimum of what every current member reads
// (fsm.Floor). Whatever the gate let into the log or a snapshot needed
// every member of its time, so it is covered by the floor of its time;
// members are only added when they cover the floor, and a member's
// versions only grow (an upgrade), so the floor never falls below what the
// log holds while the leader knows its members' versions. (A member whose
// versions this leader does not know counts as the baseline and lowers
// the floor: the node table keeps reports across leaders for that.)
// Snapshot formats a state needs without a gated command (6 and 8: see
// fsm/version.go) are not covered by this argument: they rely on the
// upgrade order, followers before the leader. And the check and the add
// are not one step: a member upgraded in place between them can let the
// gate admit an entry the new node, checked against the older floor,
// does not read (the same window the gate itself has).

// Versions returns the versions this node reads.
func (s *Store) Versions() fsm.Versions {
	if s.cfg.Versions.IsZero() {
		return fsm.Supported()
	}
	return s.cfg.Versions
}

// Self returns this node's entry in the node table: its addresses and the
// versions it reads.
func (s *Store) Self() fsm.NodeInfo {
	return fsm.NodeInfo{ID: s.cfg.ID, RaftAddr: s.cfg.Advertise, HTTPAddr: s.cfg.HTTPAddr, Region: s.cfg.Region, Versions: s.Versions()}
}

// memberVersions returns what the leader knows a member (voter or not)
// reads: its own config, else its latest report to this leader, else what
// Config.NodeVersions says, else this group's node table, else the
// baseline. Config.NodeVersions (a shard's: the membership group's table,
// to which every node reports what it runs each time it starts) comes
// before this group's own table, which learns a node's versions only
// while that node leads the group: a node that led a shard on an older
// binary and was upgraded since would otherwise keep its old versions
// here, and be refused as a joiner for good (or, rolled back, admitted).
func (s *Store) memberVersions(id string) fsm.Versions {
	if id == s.cfg.ID {
		return s.Versions()
	}
	s.reportMu.Lock()
	v, ok := s.reported[id]
	s.reportMu.Unlock()
	if ok {
		return v
	}
	if s.cfg.NodeVersions != nil {
		if v, ok := s.cfg.NodeVersions(id); ok && !v.IsZero() {
			return v
		}
	}
	if n, ok := s.fsm.Node(id); ok && !n.Versions.IsZero() {
		return n.Versions
	}
	return fsm.Baseline()
}

// Node returns id's entry in this replica's node table.
func (s *Store) Node(id string) (fsm.NodeInfo, bool) { return s.fsm.Node(id) }

// gate refuses a command that some member, voter or not, does not read.
func (s *Store) gate(cmd *fsm.Command) error { return s.gateNeed(fsm.Needs(cmd), cmd.Kind) }

// gateNeed refuses what needs need, a command of kind, when some member,
// voter or not, does not read it.
func (s *Store) gateNeed(need fsm.Versions, kind fsm.CmdKind) error {
	if fsm.Baseline().Covers(need) {
		return nil // every binary reads it: no need to look at the members
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raftError(err)
	}
	for _, srv := range f.Configuration().Servers {
		if v := s.memberVersions(string(srv.ID)); !v.Covers(need) {
			return fmt.Errorf("%w: %s %s reads %s, command kind %d needs %s: upgrade it first", ErrVersionGate, role(srv.Suffrage), srv.ID, v, kind, need)
		}
	}
	return nil
}

func role(s raft.ServerSuffrage) string {
	if s == raft.Voter {
		return "voter"
	}
	return "non-voter"
}

// admit refuses to add node id at addr, reading v (zero: it reported
// nothing, so the baseline), when v does not cover the floor of the
// other members of servers: the log and snapshots it would receive may
// hold what it cannot read. A server already in servers at addr is a
// member already (it has the log): nothing to check.
func (s *Store) admit(servers []raft.Server, id, addr string, v fsm.Versions) error {
	var others []fsm.Versions
	for _, srv := range servers {
		if string(srv.ID) == id {
			if string(srv.Address) == addr {
				return nil
			}
			continue // the same id at a new address: a new node
		}
		others = append(others, s.memberVersions(string(srv.ID)))
	}
	if v.IsZero() {
		v = fsm.Baseline()
	}
	if floor := fsm.Floor(others...); !v.Covers(floor) {
		return fmt.Errorf("%w: node %s reads %s, the group's members all read %s and its log or snapshots may need it: upgrade the node first", ErrVersionGate, id, v, floor)
	}
	return nil
}

// members returns the group's configuration (leader only).
func (s *Store) members() ([]raft.Server, error) {
	if s.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, raftError(err)
	}
	return f.Configuration().Servers, nil
}

// report records a node's versions in the leader's memory and replicates
// every known report the node table lacks, once the gate allows it.
func (s *Store) report(ctx context.Context, id string, v fsm.Versions) error {
	if !v.IsZero() {
		s.reportMu.Lock()
		s.reported[id] = v
		s.reportMu.Unlock()
	}
	return s.flushReports(ctx)
}

// flushReports writes the versions this leader knows (its own and the
// reports it holds) into the node table where it differs. Until every
// voter reads fsm.CmdNodeVersions the reports wait in memory.
func (s *Store) flushReports(ctx context.Context) error {
	if s.gate(&fsm.Command{Kind: fsm.CmdNodeVersions}) != nil {
		return nil
	}
	known := map[string]fsm.Versions{s.cfg.ID: s.Versions()}
	s.reportMu.Lock()
	for id, v := range s.reported {
		known[id] = v
	}
	s.reportMu.Unlock()
	ids := make([]string, 0, len(known))
	for id := range known {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if n, _ := s.fsm.Node(id); n.Versions == known[id] {
			continue
		}
		cmd := fsm.Command{Kind: fsm.CmdNodeVersions, Node: &fsm.NodeInfo{ID: id, Versions: known[id]}}
		if _, err := s.propose(ctx, cmd); err != nil {
			return fmt.Errorf("record versions of %s: %w", id, err)
		}
	}
	return nil
}

// UpdateRules replaces a world's rules through the log and returns the
// world's new rules version. expect, when not 0, is the rules version the
// update replaces. Once every voter reads log 12 the update is also the
// world's event (fsm.CmdUpdateRulesEvent), so that the feed's readers
// switch rules at its seq; before, it is the update alone, as log 11
// wrote it, and the readers learn of it by polling. Errors: fsm errors
// for bad rules (ErrNotSupported for keys not built yet), an unknown
// world, a stale expect or rules the world's state would not satisfy;
// ErrVersionGate while a voter does not read rules updates; ErrNotLeader,
// ErrOutcomeUnknown as for any write.
func (s *Store) UpdateRules(ctx context.Context, world string, rules fsm.Rules, expect uint64) (uint64, error) {
	if err := rules.Validate(); err != nil {
		return 0, err
	}
	cmd := fsm.Command{Kind: fsm.CmdUpdateRulesEvent, Rules: &fsm.RulesUpdate{World: world, Expect: expect, Rules: rules}}
	o, err := s.propose(ctx, cmd)
	if errors.Is(err, ErrVersionGate) {
		// Some voter reads less than log 12 (the gate wrote nothing):
		// the update without its event, gated again.
		cmd.Kind = fsm.CmdUpdateRules
		o, err = s.propose(ctx, cmd)
	}
	if err != nil {
		return 0, err
	}
	return o.res.RulesVersion, o.res.Err
}
