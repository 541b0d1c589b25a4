package meta

import (
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func servers(voters []string, nonvoters ...string) []raft.Server {
	var out []raft.Server
	for _, v := range voters {
		out = append(out, raft.Server{ID: raft.ServerID(v), Address: raft.ServerAddress(v + ":1"), Suffrage: raft.Voter})
	}
	for _, v := range nonvoters {
		out = append(out, raft.Server{ID: raft.ServerID(v), Address: raft.ServerAddress(v + ":1"), Suffrage: raft.Nonvoter})
	}
	return out
}

func TestTheShardLeaderMovesAReplacementOnOneStepAtATime(t *testing.T) {
	three := []string{"n1", "n2", "n3"}
	for name, tc := range map[string]struct {
		self   string
		voters []string
		r      *Replacement
		config []raft.Server
		want   []step
	}{
		"nothing to do": {"n1", three, nil, servers(three), nil},
		"the joiner is not in the configuration": {"n1", three, &Replacement{Old: "n2", New: "n4"}, servers(three),
			[]step{{stepAddNonvoter, "n4"}}},
		"the joiner catches up": {"n1", three, &Replacement{Old: "n2", New: "n4"}, servers(three, "n4"), nil},
		"the joiner caught up": {"n1", three, &Replacement{Old: "n2", New: "n4", Ready: true}, servers(three, "n4"),
			[]step{{stepPromote, "n4"}}},
		"the joiner votes": {"n1", three, &Replacement{Old: "n2", New: "n4", Ready: true}, servers([]string{"n1", "n2", "n3", "n4"}),
			[]step{{stepDone, "n4"}}},
		"the old leader adds the joiner too": {"n2", three, &Replacement{Old: "n2", New: "n4"}, servers(three),
			[]step{{stepAddNonvoter, "n4"}}},
		"the map dropped the old voter": {"n1", []string{"n1", "n3", "n4"}, nil, servers([]string{"n1", "n2", "n3", "n4"}),
			[]step{{stepRemove, "n2"}}},
		"the leader is the dropped voter": {"n2", []string{"n1", "n3", "n4"}, nil, servers([]string{"n1", "n2", "n3", "n4"}),
			[]step{{stepTransfer, "n2"}}},
		"a stale map never removes a voter below its count": {"n1", three, nil, servers([]string{"n1", "n3", "n4"}), nil},
		"a nonvoter the map does not list leaves": {"n1", three, nil, servers(three, "n4"),
			[]step{{stepRemove, "n4"}}},
		// mark_down dropped the replacement (down.go): the dead joiner
		// leaves, a voter already or not.
		"a dropped joiner that votes leaves": {"n1", three, nil, servers([]string{"n1", "n2", "n3", "n4"}),
			[]step{{stepRemove, "n4"}}},
	} {
		require.Equal(t, tc.want, leaderSteps(tc.self, tc.voters, tc.r, tc.config), name)
	}
}

func TestAJoinerIsCaughtUpOnceItAppliedItsMark(t *testing.T) {
	require.False(t, listed("n4", servers([]string{"n1", "n2", "n3"})))
	require.True(t, listed("n4", servers([]string{"n1"}, "n4")))
	require.False(t, caughtUp(0, 12), "no mark: not asked yet")
	require.False(t, caughtUp(10, 9), "behind its mark")
	require.True(t, caughtUp(10, 10))
	require.True(t, caughtUp(10, 30))
}

func TestANodeIsRemovedWhenItsConfigurationLeavesItOutOrItLostTheLeader(t *testing.T) {
	require.False(t, removed("n2", nil, ""), "no configuration known")
	require.False(t, removed("n2", servers([]string{"n1", "n2"}), "n1"))
	require.False(t, removed("n2", servers([]string{"n1"}, "n2"), "n1"))
	require.True(t, removed("n2", servers([]string{"n1", "n3", "n4"}), "n1"))
	require.True(t, removed("n2", servers([]string{"n1", "n2", "n3", "n4"}), ""),
		"the removing entry never came: the leader stopped replicating to it")
}

func TestStepKindsHaveNames(t *testing.T) {
	for k, want := range map[stepKind]string{stepAddNonvoter: "add_nonvoter", stepPromote: "promote", stepDone: "replace_done",
		stepRemove: "remove", stepTransfer: "transfer_leadership", stepAddress: "address", 0: "step(0)"} {
		require.Equal(t, want, k.String())
	}
}
