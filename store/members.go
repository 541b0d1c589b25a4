package store

import (
	"context"

	"github.com/hashicorp/raft"
)

// Members returns the group's latest Raft configuration as this node
// has it (raft v1.7.3 does not say at which index). A shard changes its voters through
// these (shard/meta's reconciliation), without the node table, which
// only the membership group holds (Join, Remove).
func (s *Store) Members() ([]raft.Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// CommitIndex returns the newest log index this node knows committed.
func (s *Store) CommitIndex() uint64 { return s.raft.CommitIndex() }

// LastIndex returns the index of the newest entry in this node's log
// (or snapshot).
func (s *Store) LastIndex() uint64 { return s.raft.LastIndex() }

// AddNonvoter adds id as a nonvoter (leader only): it gets the log and
// votes on nothing until PromoteVoter. A node that is not a member yet is
// refused with ErrVersionGate unless what it reads covers the group's
// floor (versions.go). The leader learns what it reads as for the gate:
// a shard's joiner has reported to the membership group, whose node table
// on this node Config.NodeVersions reads; one it knows nothing of counts
// as the baseline.
func (s *Store) AddNonvoter(ctx context.Context, id, addr string) error {
	if err := s.admitMember(id, addr); err != nil {
		return err
	}
	return raftError(s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.timeout(ctx)).Error())
}

// PromoteVoter makes id a voter (leader only), a nonvoter already or not;
// a node that is not a member yet is checked as by AddNonvoter.
func (s *Store) PromoteVoter(ctx context.Context, id, addr string) error {
	if err := s.admitMember(id, addr); err != nil {
		return err
	}
	return raftError(s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.timeout(ctx)).Error())
}

// admitMember checks id at addr against the floor (leader only).
func (s *Store) admitMember(id, addr string) error {
	servers, err := s.members()
	if err != nil {
		return err
	}
	return s.admit(servers, id, addr, s.memberVersions(id))
}

// RemoveMember removes id from the Raft configuration (leader only),
// leaving the node table as it is.
func (s *Store) RemoveMember(ctx context.Context, id string) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	return raftError(s.raft.RemoveServer(raft.ServerID(id), 0, s.timeout(ctx)).Error())
}
