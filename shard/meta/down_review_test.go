package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// A replacement committed before the upgrade (level 4) and replayed
// after it by this binary must give the state a replica restoring its
// level-4 snapshot of the same entries has: otherwise the FSM's next
// pick differs between them.
func TestAnOldReplacementPicksAlikeReplayedOrRestored(t *testing.T) {
	log := []Command{
		{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}},
		{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n4"},
		{Op: OpVoterReady, Shard: 1, New: "n4"},
		{Op: OpReplaceDone, Shard: 1, Node: "n1", New: "n4"},
	}
	// Replica A applied the log on level 4 and restores its snapshot,
	// which holds only the keys level 4 wrote.
	a := withNodes(t, 4)
	for _, c := range log {
		mustApply(t, a, c)
	}
	b, err := EncodeSnapshot(a.state)
	require.NoError(t, err)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b[1:], &raw))
	for k := range raw {
		require.Contains(t, []string{"nodes", "shards", "worlds", "leaders", "load", "replacing", "removed"}, k,
			"a snapshot of level-4 entries holds a key a level-4 member refuses")
	}
	a2 := NewFSM(0)
	require.NoError(t, a2.Restore(io.NopCloser(bytes.NewReader(b))))

	// Replica B replays the entries with this binary.
	bb := withNodes(t, 4)
	for _, c := range log {
		mustApply(t, bb, c)
	}
	c := Command{Op: OpReplaceVoter, Shard: 1, Node: "n2"}
	ra, errA := applyTo(t, a2, c)
	rb, errB := applyTo(t, bb, c)
	require.Equal(t, errA == nil, errB == nil, "replicas disagree on the same entry: %v, %v", errA, errB)
	require.Equal(t, ra.New, rb.New)
}

// A whole replacement in the old log, its pick (n1, the voter the
// previous replacement took out) made by level 4: replayed by this
// binary it gives the map the level-4 replicas have.
func TestReplayingAnOldPickGivesTheSameMap(t *testing.T) {
	log := []Command{
		{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}},
		{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n4"},
		{Op: OpVoterReady, Shard: 1, New: "n4"},
		{Op: OpReplaceDone, Shard: 1, Node: "n1", New: "n4"},
		{Op: OpReplaceVoter, Shard: 1, Node: "n2"}, // level 4 picked n1
		{Op: OpVoterReady, Shard: 1, New: "n1"},
		{Op: OpReplaceDone, Shard: 1, Node: "n2", New: "n1"},
	}
	f := withNodes(t, 4)
	for _, c := range log {
		mustApply(t, f, c)
	}
	require.Equal(t, []string{"n1", "n3", "n4"}, f.state.Shards[1], "what the level-4 replicas' map says")
}

// admitDown runs on the proposing goroutine (a request, a forwarded
// proposal) while the report loop asks the nonvoters how far they
// applied and keeps a mark for each (memberMarks, the loop's only): the
// mark of a node marked down is dropped by the loop, never by admitDown
// (run with -race).
func TestMarkingDownLeavesTheReportLoopsMarksToIt(t *testing.T) {
	live, _, asked := countingMember(t, readsLevel) // answers, never caught up: asked every tick
	dead := downMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers,
			raft.Server{Suffrage: raft.Nonvoter, ID: "live", Address: raft.ServerAddress(live)},
			raft.Server{Suffrage: raft.Nonvoter, ID: "dead", Address: raft.ServerAddress(dead)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "live", Raft: live, HTTP: "h:2"})
	c.propose("n1", Command{Op: OpAddNode, Node: "dead", Raft: dead, HTTP: "h:3"})
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, []string{"dead", "live"})
	// Two asks: the loop kept a mark after the first.
	require.Eventually(t, func() bool { return asked() >= 2 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"dead"}}))
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, []string{"live"})
}

// With the members left as formed (--meta-voters 0), a configured
// nonvoter marked down and listed again by add_node comes back only once
// it answers with this binary's read level: one back on an older gsd
// would get entries (mark_down among them) it cannot read.
func TestWithMembersAsFormedANodeBackOnAnOlderGsdIsNotAdded(t *testing.T) {
	back := downMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.ReportInterval, cfg.Voters = 0, 0
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "back", Address: raft.ServerAddress(back)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "back", Raft: back, HTTP: "h:2"})
	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"back"}}))
	require.NoError(t, c.proposeAt(Command{Op: OpAddNode, Node: "back", Raft: back, HTTP: "h:2"}))
	leader := c.metaLeader()
	require.Eventually(t, func() bool { return len(c.group(leader).fsm.Down()) == 0 }, 10*time.Second, 5*time.Millisecond)

	_, stop, _ := countingMemberAt(t, back, readsLevel-1) // back, on an older gsd
	withAnswers(t, c.group(leader), c.group(leader).addNonvoters)
	require.False(t, listed("back", c.metaConfig()), "added back although it reads an older log")
	stop()
	countingMemberAt(t, back, readsLevel) // upgraded
	withAnswers(t, c.group(leader), c.group(leader).addNonvoters)
	require.True(t, listed("back", c.metaConfig()), "upgraded, it is added")
}

// The joiner of a replacement under way dies and is marked down: only
// it could say voter_ready, so the mark drops the replacement, and the
// shard can be given another joiner and the dead one removed.
func TestMarkingDownAJoinerDropsItsReplacement(t *testing.T) {
	f := withNodes(t, 5)
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n1", "n2", "n3"}})
	mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n4"})
	mustApply(t, f, Command{Op: OpVoterReady, Shard: 1, New: "n4"})
	mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 2, Node: "n2", New: "n5"})
	mustApply(t, f, Command{Op: OpMarkDown, Nodes: []string{"n4"}})
	require.Equal(t, map[uint64]Replacement{2: {Old: "n2", New: "n5"}}, f.Replacements(), "only n4's replacement is dropped")
	require.Equal(t, map[uint64]string{2: "n5"}, f.View().Joining)
	require.Equal(t, []string{"n1", "n2", "n3"}, f.state.Shards[1], "the map is as before the replacement")

	res := mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n1"})
	require.Equal(t, "n5", res.New, "another joiner")
	mustApply(t, f, Command{Op: OpRemoveNode, Node: "n4"})
}

// A member on a gsd from before the probe accepts the connection and
// closes it: it is alive, so it is not marked down.
func TestAMemberThatAcceptsTheConnectionIsNotMarkedDown(t *testing.T) {
	old, stop := fakeMember(t, 0)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "old", Address: raft.ServerAddress(old)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "old", Raft: old, HTTP: "h:2"})
	err := c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"old"}})
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, `node "old" accepts connections`)
	require.True(t, listed("old", c.metaConfig()), "still a member")
	require.Empty(t, c.group(c.metaLeader()).fsm.Down())

	stop()
	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"old"}}))
}

// A mark_down whose request ends while the leader probes its nodes is
// not proposed: a probe cut short says nothing about the node, and
// taking it for down would take a live member out of the meta group.
func TestMarkingDownStopsWhenTheRequestEnds(t *testing.T) {
	live, _ := fakeMember(t, readsLevel)
	c := newMetaClusterWith(t, 1, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "live", Address: raft.ServerAddress(live)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "live", Raft: live, HTTP: "h:2"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	err := c.group(c.metaLeader()).admitDown(ctx, Command{Op: OpMarkDown, Nodes: []string{"live"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, listed("live", c.metaConfig()), "still a member")
}

// A node marked down is added back only once it holds no seat: wiped and
// added while still a voter of a shard, it would vote there with an
// empty log.
func TestANodeMarkedDownIsAddedBackOnlyOnceEvacuated(t *testing.T) {
	gone := downMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.OpenShards = false
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "gone", Address: raft.ServerAddress(gone)})
	})
	c.addNodes()
	add := Command{Op: OpAddNode, Node: "gone", Raft: gone, HTTP: "h:2"}
	c.propose("n1", add)
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"gone", "n1", "n2"}})
	c.propose("n1", Command{Op: OpCreateShard, Shard: 2, Voters: []string{"gone", "n2", "n3"}})
	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"gone"}}))

	err := c.proposeAt(add)
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, `node "gone" is marked down and still a voter of shards [1 2]: evacuate it first`)
	require.Equal(t, []string{"gone"}, c.group(c.metaLeader()).fsm.Down(), "still marked")

	for _, s := range []uint64{1, 2} { // evacuated (the steps a joiner and the shard's leader propose)
		for _, cmd := range []Command{{Op: OpReplaceVoter, Shard: s, Node: "gone", New: "n1"}, {Op: OpVoterReady, Shard: s, New: "n1"}, {Op: OpReplaceDone, Shard: s, Node: "gone", New: "n1"}} {
			if s == 1 {
				cmd.New = "n3"
			}
			require.NoError(t, c.proposeAt(cmd))
		}
	}
	require.NoError(t, c.proposeAt(add))
	require.Empty(t, c.group(c.metaLeader()).fsm.Down())
}

// A node marked already is probed at its address again (the members
// leave it out, but the map has it): back and alive, it is not marked
// again. Of several live nodes, the refusal names the lowest id.
func TestMarkingDownProbesEveryNodeAtItsAddress(t *testing.T) {
	gone, a, b := downMember(t), downMember(t), downMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "gone", Address: raft.ServerAddress(gone)})
	})
	c.addNodes()
	for id, addr := range map[string]string{"gone": gone, "a": a, "b": b} {
		c.propose("n1", Command{Op: OpAddNode, Node: id, Raft: addr, HTTP: "h:" + id})
	}
	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"gone"}}))
	countingMemberAt(t, gone, readsLevel) // back, not added yet
	err := c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"gone"}})
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, `node "gone" answers`)

	countingMemberAt(t, a, readsLevel)
	countingMemberAt(t, b, readsLevel)
	for range 5 {
		err := c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"b", "a"}})
		require.ErrorContains(t, err, `node "a" answers`)
	}
}
