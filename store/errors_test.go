package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// Only a proposal raft refused before appending may be called not proposed;
// everything else after raft.Apply leaves the outcome open.
func TestRaftErrorsMapToNotLeaderOnlyWhenNothingWasAppended(t *testing.T) {
	require.ErrorIs(t, proposeError(raft.ErrNotLeader), ErrNotLeader)
	for _, err := range []error{raft.ErrLeadershipLost, raft.ErrEnqueueTimeout, raft.ErrRaftShutdown, raft.ErrAbortedByRestore, errors.New("io")} {
		require.ErrorIs(t, proposeError(err), ErrOutcomeUnknown, err.Error())
	}
	require.NoError(t, raftError(nil))
	require.ErrorIs(t, raftError(raft.ErrLeadershipLost), ErrNotLeader)
	other := errors.New("configuration changed since")
	require.Equal(t, other, raftError(other))

	require.Equal(t, "not_leader", outcomeLabel(ErrNotLeader))
	require.Equal(t, "overloaded", outcomeLabel(ErrOverloaded))
	require.Equal(t, "unknown", outcomeLabel(ErrOutcomeUnknown))
}

func TestStateNamesAndMembershipTimeouts(t *testing.T) {
	for state, want := range map[raft.RaftState]string{
		raft.Leader: "leader", raft.Candidate: "candidate", raft.Shutdown: "shutdown", raft.Follower: "follower",
	} {
		require.Equal(t, want, stateName(state))
	}
	s := &Store{cfg: Config{ApplyTimeout: 7 * time.Second}}
	require.Equal(t, 7*time.Second, s.timeout(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	d := s.timeout(ctx)
	require.Greater(t, d, 59*time.Minute)
	require.LessOrEqual(t, d, time.Hour)
}
