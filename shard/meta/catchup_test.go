package meta

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
// for the shard leader's answers. The asks it starts end with the test.
func bareGroup(t *testing.T, id string, ask func(ctx context.Context, shard uint64, leader string) (uint64, error)) *Group {
	ctx, cancel := context.WithCancel(context.Background())
	g := &Group{cfg: Config{ID: id}, joinMarks: map[uint64]uint64{}, leaderAsks: newTasks[uint64, askedLast](), log: testLogger(),
		stopCtx: ctx, askLast: ask}
	t.Cleanup(func() { cancel(); g.wg.Wait() })
	return g
}

// busy reports whether a call for k is running.
func (ts *tasks[K, R]) busy(k K) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	_, ok := ts.running[k]
	return ok
}

// asked waits until g's ask of shard id's leader ended.
func asked(t *testing.T, g *Group, id uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return !g.leaderAsks.busy(id) }, 10*time.Second, time.Millisecond, "the ask of shard %d's leader ends", id)
}

// A joiner that holds the entry that added it, but not the thousands the
// leader wrote after it, is not ready: its own log (last index and
// commit index as it knows them) said it was, which let the leader
// promote a voter far behind.
func TestAJoinerFarBehindTheShardLeaderIsNotReady(t *testing.T) {
	var leaderLast, asks atomic.Uint64
	leaderLast.Store(10_000)
	var mu sync.Mutex
	var askedOf []string
	g := bareGroup(t, "n4", func(_ context.Context, shard uint64, leader string) (uint64, error) {
		mu.Lock()
		askedOf = append(askedOf, fmt.Sprintf("%d@%s", shard, leader))
		mu.Unlock()
		asks.Add(1)
		return leaderLast.Load(), nil
	})
	j := &fakeJoiner{config: servers([]string{"n1", "n2", "n3"}), leader: "n1"}
	j.status = store.Status{AppliedIndex: 100, LastIndex: 100, CommitIndex: 10_000}
	require.False(t, j.caughtUp(g, 7), "not in the configuration yet")
	asked(t, g, 7)
	require.Zero(t, asks.Load(), "nothing is asked before the configuration lists the joiner")

	j.config = servers([]string{"n1", "n2", "n3"}, "n4")
	require.False(t, j.caughtUp(g, 7), "no answer yet")
	asked(t, g, 7)
	require.False(t, j.caughtUp(g, 7), "applied 100 of the leader's 10,000")
	asked(t, g, 7)
	require.Equal(t, uint64(2), asks.Load(), "asked again: behind its mark")

	// It applied up to the mark while the leader went on: ready, on
	// the mark it asked for, without asking again.
	leaderLast.Store(10_500)
	j.status = store.Status{AppliedIndex: 10_000, LastIndex: 10_100, CommitIndex: 10_400}
	require.True(t, j.caughtUp(g, 7))
	asked(t, g, 7)
	require.Equal(t, uint64(2), asks.Load())
	mu.Lock()
	require.Equal(t, []string{"7@n1", "7@n1"}, askedOf, "the shard's leader is asked about the shard")
	mu.Unlock()
}

func TestAJoinerIsNotReadyWhileItCannotAskTheLeader(t *testing.T) {
	failing := bareGroup(t, "n4", func(context.Context, uint64, string) (uint64, error) {
		return 0, errors.New("down")
	})
	j := &fakeJoiner{config: servers([]string{"n1"}, "n4"), leader: "n1", status: store.Status{AppliedIndex: 5, LastIndex: 5, CommitIndex: 5}}
	for range 3 {
		require.False(t, j.caughtUp(failing, 1), "the leader does not answer")
		asked(t, failing, 1)
	}
	require.NotContains(t, failing.joinMarks, uint64(1), "a failed ask is no mark")

	var asks atomic.Int64
	never := bareGroup(t, "n4", func(context.Context, uint64, string) (uint64, error) {
		asks.Add(1)
		return 0, nil
	})
	j.leader = ""
	require.False(t, j.caughtUp(never, 1), "no leader known")
	j.leader = "n4"
	require.False(t, j.caughtUp(never, 1), "a joiner never leads")
	asked(t, never, 1)
	require.Zero(t, asks.Load(), "asked without a leader to ask")
}

// A shard leader that accepts the joiner's connection and never answers
// (stalled, blackholed) does not hold up the joiner's report loop: the
// ask runs in the background, one at a time, and the loop goes on
// while it is in flight. Before, each tick waited for it, up to the
// probe timeout.
func TestAStalledShardLeaderDoesNotHoldUpTheJoinersLoop(t *testing.T) {
	var asks atomic.Int64
	release := make(chan struct{})
	g := bareGroup(t, "n4", func(ctx context.Context, _ uint64, _ string) (uint64, error) {
		asks.Add(1)
		select {
		case <-release:
			return 50, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	j := &fakeJoiner{config: servers([]string{"n1"}, "n4"), leader: "n1", status: store.Status{AppliedIndex: 60}}
	for range 3 {
		require.False(t, j.caughtUp(g, 1), "no answer yet")
	}
	require.True(t, g.leaderAsks.busy(1), "the loop went on while its ask was in flight")
	require.Eventually(t, func() bool { return asks.Load() == 1 }, 10*time.Second, time.Millisecond)
	close(release)
	asked(t, g, 1)
	require.True(t, j.caughtUp(g, 1), "the answer, taken on a later tick, is the mark")
	require.Equal(t, int64(1), asks.Load(), "one ask in flight at a time")

	// An answer older than the loop's keep that answers an ask from
	// before the previous tick (the loop went on while it was in
	// flight) is no mark: the leader has gone on since.
	hold := make(chan struct{})
	release = hold
	delete(g.joinMarks, 1)
	require.False(t, j.caughtUp(g, 1), "asks again")
	require.False(t, j.caughtUp(g, 1), "a tick while the ask is in flight")
	close(hold)
	asked(t, g, 1)
	g.leaderAsks.mu.Lock()
	r := g.leaderAsks.done[1]
	r.at = r.at.Add(-time.Hour)
	g.leaderAsks.done[1] = r
	g.leaderAsks.mu.Unlock()
	require.False(t, j.caughtUp(g, 1), "an old answer to an ask two ticks back")
	require.NotContains(t, g.joinMarks, uint64(1))
}

// Report ticks slower than the loop's keep (synchronous steps still on
// the loop) do not keep a joiner from ever becoming ready: the answer
// to the previous tick's ask is the mark however old it is when the
// tick takes it, an index the shard leader had reached. Before, every
// such answer was dropped as too old and the tick asked again: no mark,
// no voter_ready.
func TestAJoinerBecomesReadyWhileTheReportTicksAreSlow(t *testing.T) {
	var leaderLast, asks atomic.Uint64
	leaderLast.Store(1_000)
	g := bareGroup(t, "n4", func(context.Context, uint64, string) (uint64, error) {
		asks.Add(1)
		return leaderLast.Load(), nil
	})
	j := &fakeJoiner{config: servers([]string{"n1"}, "n4"), leader: "n1", status: store.Status{AppliedIndex: 1_000}}
	slowTick := func() bool { // the tick took far longer than the keep
		t.Helper()
		asked(t, g, 1)
		g.leaderAsks.mu.Lock()
		if r, ok := g.leaderAsks.done[1]; ok {
			r.at = r.at.Add(-time.Minute)
			g.leaderAsks.done[1] = r
		}
		g.leaderAsks.mu.Unlock()
		return j.caughtUp(g, 1)
	}
	require.False(t, j.caughtUp(g, 1), "no answer yet")
	require.True(t, slowTick(), "the answer to the previous tick's ask is its mark, however slow the tick")
	require.Equal(t, uint64(1), asks.Load())

	// Behind the leader as the ticks go on: each slow tick takes the
	// answer to the one before as the new mark.
	leaderLast.Store(2_000)
	delete(g.joinMarks, 1)
	require.False(t, j.caughtUp(g, 1), "no mark: asks")
	require.False(t, slowTick(), "1,000 applied of the leader's 2,000")
	require.Equal(t, uint64(2_000), g.joinMarks[1])
	j.status.AppliedIndex = 2_000
	require.True(t, slowTick(), "at its mark")
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
