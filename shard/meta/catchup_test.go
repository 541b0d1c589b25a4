package meta

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/store"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// fakeJoiner is a joining replica as joinerCaughtUp sees it, with the
// indexes a store.Status has.
type fakeJoiner struct {
	config []raft.Server
	status store.Status
	leader string
}

func (f *fakeJoiner) Members() ([]raft.Server, error) { return f.config, nil }
func (f *fakeJoiner) Leader() (string, string)        { return f.leader, "" }

// caughtUp asks g as join does.
func (f *fakeJoiner) caughtUp(g *Group, id uint64) bool {
	return g.joinerCaughtUp(id, f, f.status.AppliedIndex)
}

// bareGroup is a Group with only what joinerCaughtUp uses; ask stands in
// for the shard leader's answers.
func bareGroup(id string, ask func(ctx context.Context, shard uint64, leader string) (uint64, error)) *Group {
	return &Group{cfg: Config{ID: id}, joinMarks: map[uint64]uint64{}, log: testLogger(), stopCtx: context.Background(), askLast: ask}
}

// A joiner that holds the entry that added it, but not the thousands the
// leader wrote after it, is not ready: its own log (last index and
// commit index as it knows them) said it was, which let the leader
// promote a voter far behind.
func TestAJoinerFarBehindTheShardLeaderIsNotReady(t *testing.T) {
	leaderLast, asks := uint64(10_000), 0
	g := bareGroup("n4", func(_ context.Context, shard uint64, leader string) (uint64, error) {
		require.Equal(t, uint64(7), shard)
		require.Equal(t, "n1", leader)
		asks++
		return leaderLast, nil
	})
	j := &fakeJoiner{config: servers([]string{"n1", "n2", "n3"}), leader: "n1"}
	j.status = store.Status{AppliedIndex: 100, LastIndex: 100, CommitIndex: 10_000}
	require.False(t, j.caughtUp(g, 7), "not in the configuration yet")
	require.Zero(t, asks, "nothing is asked before the configuration lists the joiner")

	j.config = servers([]string{"n1", "n2", "n3"}, "n4")
	require.False(t, j.caughtUp(g, 7), "applied 100 of the leader's 10,000")
	require.Equal(t, 1, asks)

	// It applied up to the mark while the leader went on: ready, on
	// the mark it asked for, without asking again.
	leaderLast = 10_500
	j.status = store.Status{AppliedIndex: 10_000, LastIndex: 10_100, CommitIndex: 10_400}
	require.True(t, j.caughtUp(g, 7))
	require.Equal(t, 1, asks)
}

func TestAJoinerIsNotReadyWhileItCannotAskTheLeader(t *testing.T) {
	failing := bareGroup("n4", func(context.Context, uint64, string) (uint64, error) {
		return 0, errors.New("down")
	})
	j := &fakeJoiner{config: servers([]string{"n1"}, "n4"), leader: "n1", status: store.Status{AppliedIndex: 5, LastIndex: 5, CommitIndex: 5}}
	require.False(t, j.caughtUp(failing, 1), "the leader does not answer")

	never := bareGroup("n4", func(context.Context, uint64, string) (uint64, error) {
		t.Fatal("asked without a leader to ask")
		return 0, nil
	})
	j.leader = ""
	require.False(t, j.caughtUp(never, 1), "no leader known")
	j.leader = "n4"
	require.False(t, j.caughtUp(never, 1), "a joiner never leads")
}

// The ask goes over the meta Layer to the node that leads the shard,
// which answers its last log index; a node that does not lead it, or
// does not run it, answers an error.
func TestAShardsLeaderAnswersItsLastIndexToAJoiner(t *testing.T) {
	c := newMetaCluster(t, 4)
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
	c.propose("n1", Command{Op: OpAssignWorld, World: "w", Shard: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var leader string
	require.Eventually(t, func() bool { // asked again should the leadership move meanwhile
		leader = c.shardLeader("w")
		st, _ := c.mgrs[leader].Group(1)
		before := st.LastIndex()
		last, err := c.group("n4").leaderLast(ctx, 1, leader)
		return err == nil && last >= before && last <= st.LastIndex()
	}, 10*time.Second, 10*time.Millisecond, "the leader answers its last index")

	require.Eventually(t, func() bool { // a follower answers it does not lead
		for _, id := range []string{"n1", "n2", "n3"} {
			if st, _ := c.mgrs[id].Group(1); !st.IsLeader() {
				_, err := c.group("n4").leaderLast(ctx, 1, id)
				return err != nil && strings.Contains(err.Error(), "does not lead shard 1")
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	_, err := c.group("n1").leaderLast(ctx, 1, "n4")
	require.ErrorContains(t, err, "does not run shard 1")
	_, err = c.group("n1").leaderLast(ctx, 1, "n9")
	require.ErrorIs(t, err, ErrNotFound)
}
