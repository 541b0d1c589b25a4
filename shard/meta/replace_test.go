package meta

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestReplaceCommandsRoundTripAndTakeOnlyTheirFields(t *testing.T) {
	// Level 5: what reads or records State.Left (the FSM's own pick,
	// replace_done); 4 the rest.
	for c, level := range map[*Command]int{
		{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n4"}: 4,
		{Op: OpReplaceVoter, Shard: 1, Node: "n1"}:            5,
		{Op: OpVoterReady, Shard: 0, New: "n4"}:               4,
		{Op: OpReplaceDone, Shard: 1, Node: "n1", New: "n4"}:  5,
		{Op: OpMarkDown, Nodes: []string{"n1", "n2"}}:         5,
	} {
		b, err := c.Encode()
		require.NoError(t, err)
		got, err := DecodeCommand(b)
		require.NoError(t, err)
		require.Equal(t, *c, got)
		require.Equal(t, level, needsLevel(*c), "%s is gated", c.Op)
	}
	for name, c := range map[string]Command{
		"replace without old":   {Op: OpReplaceVoter, Shard: 1, New: "n4"},
		"replace with itself":   {Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n1"},
		"replace with a world":  {Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n2", World: "w"},
		"ready without new":     {Op: OpVoterReady, Shard: 1},
		"ready with a node":     {Op: OpVoterReady, Shard: 1, New: "n4", Node: "n1"},
		"done without new":      {Op: OpReplaceDone, Shard: 1, Node: "n1"},
		"new on another op":     {Op: OpRemoveNode, Node: "n1", New: "n2"},
		"new on an assign":      {Op: OpAssignWorld, World: "w", Shard: 1, New: "n2"},
		"done with same nodes":  {Op: OpReplaceDone, Shard: 1, Node: "n2", New: "n2"},
		"replace with replicas": {Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n2", Replicas: 3},
	} {
		_, err := c.Encode()
		require.ErrorIs(t, err, ErrBadCommand, name)
	}
	// The commands before replacements keep their bytes (no "new").
	b, err := Command{Op: OpRemoveNode, Node: "n1"}.Encode()
	require.NoError(t, err)
	require.Equal(t, `{"op":"remove_node","node":"n1"}`, string(b[1:]))
	require.Equal(t, 4, needsLevel(Command{Op: OpRemoveNode, Node: "n1"}))
}

// replacing is an FSM with nodes n1..n5 and shard 1 on n1, n2, n3.
func replacing(t *testing.T) *FSM {
	t.Helper()
	f := withNodes(t, 5)
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
	return f
}

func TestReplaceVoterRefusesWhatItCannotDo(t *testing.T) {
	f := replacing(t)
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 0, Voters: []string{"n1", "n2", "n3"}})
	_, err := applyTo(t, f, Command{Op: OpReplaceVoter, Shard: 0, Node: "n1", New: "n4"})
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, "shard 0 is the membership group")
	for name, tc := range map[string]struct {
		c        Command
		notFound bool
		msg      string
	}{
		"unknown shard":       {Command{Op: OpReplaceVoter, Shard: 9, Node: "n1", New: "n4"}, true, "no shard 9"},
		"old not a node":      {Command{Op: OpReplaceVoter, Shard: 1, Node: "x", New: "n4"}, true, `no node "x"`},
		"new not a node":      {Command{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "x"}, true, `no node "x"`},
		"old not a voter":     {Command{Op: OpReplaceVoter, Shard: 1, Node: "n4", New: "n5"}, false, `"n4" is not a voter of shard 1`},
		"new a voter already": {Command{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n2"}, false, `"n2" is a voter of shard 1 already`},
		"ready, none pending": {Command{Op: OpVoterReady, Shard: 1, New: "n4"}, false, `"n4" is not joining shard 1`},
		"done, none pending":  {Command{Op: OpReplaceDone, Shard: 1, Node: "n1", New: "n4"}, false, "not replacing a voter"},
		"ready, no shard":     {Command{Op: OpVoterReady, Shard: 9, New: "n4"}, true, "no shard 9"},
	} {
		_, err := applyTo(t, f, tc.c)
		require.ErrorIs(t, err, ErrRefused, name)
		if tc.notFound {
			require.ErrorIs(t, err, ErrNotFound, name)
		}
		require.ErrorContains(t, err, tc.msg, name)
	}
	require.Empty(t, f.Replacements())
}

func TestAReplacementGoesThroughTwoMapStates(t *testing.T) {
	f := replacing(t)
	res := mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n2", New: "n4"})
	require.Equal(t, []string{"n1", "n3", "n4"}, res.Voters, "the voters once done")
	require.Equal(t, map[uint64]Replacement{1: {Old: "n2", New: "n4"}}, f.Replacements())
	sh, _ := f.View().Map.Shard(1)
	require.Equal(t, []string{"n1", "n2", "n3"}, sh.Voters, "the old voter stays while the new one joins")
	require.Equal(t, map[uint64]string{1: "n4"}, f.View().Joining)
	picked := mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n2"})
	require.Equal(t, res.Voters, picked.Voters, "without new, the pending replacement answers")
	again := mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n2", New: "n4"})
	require.Equal(t, res, again, "the same replacement answers as the first time")
	_, err := applyTo(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n3", New: "n5"})
	require.ErrorContains(t, err, "replacing n2 with n4 already", "one replacement per shard at a time")
	_, err = applyTo(t, f, Command{Op: OpRemoveNode, Node: "n4"})
	require.ErrorContains(t, err, `"n4" is joining shards [1]`)

	_, err = applyTo(t, f, Command{Op: OpReplaceDone, Shard: 1, Node: "n2", New: "n4"})
	require.ErrorContains(t, err, "has not caught up", "not before the joiner is ready")
	_, err = applyTo(t, f, Command{Op: OpVoterReady, Shard: 1, New: "n5"})
	require.ErrorContains(t, err, `"n5" is not joining shard 1`)
	mustApply(t, f, Command{Op: OpVoterReady, Shard: 1, New: "n4"})
	require.True(t, f.Replacements()[1].Ready)
	_, err = applyTo(t, f, Command{Op: OpReplaceDone, Shard: 1, Node: "n3", New: "n4"})
	require.ErrorContains(t, err, "not n3 with n4")

	// A snapshot in between restores the replacement.
	g := NewFSM(0)
	b, err := EncodeSnapshot(f.state)
	require.NoError(t, err)
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(b))))
	require.Equal(t, f.Replacements(), g.Replacements())

	done := mustApply(t, f, Command{Op: OpReplaceDone, Shard: 1, Node: "n2", New: "n4"})
	require.Equal(t, []string{"n1", "n3", "n4"}, done.Voters)
	sh, ok := f.View().Map.Shard(1)
	require.True(t, ok)
	require.Equal(t, []string{"n1", "n3", "n4"}, sh.Voters, "the map drops the old voter")
	require.Empty(t, f.Replacements())
	require.Empty(t, f.View().Joining)
	again = mustApply(t, f, Command{Op: OpReplaceDone, Shard: 1, Node: "n2", New: "n4"})
	require.Equal(t, []string{"n1", "n3", "n4"}, again.Voters, "done already answers the same")
	mustApply(t, f, Command{Op: OpRemoveNode, Node: "n2"})

	// Removing a shard drops its replacement.
	mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n5"})
	mustApply(t, f, Command{Op: OpRemoveShard, Shard: 1})
	require.Empty(t, f.Replacements())
}

func TestSnapshotsWithoutReplacementsKeepTheirBytesAndBadOnesAreRefused(t *testing.T) {
	f := replacing(t)
	b, err := EncodeSnapshot(f.state)
	require.NoError(t, err)
	require.NotContains(t, string(b), "replacing", "no replacement: the snapshot reads as before")
	s, err := DecodeSnapshot(b)
	require.NoError(t, err)
	require.NotNil(t, s.Replacing)

	for name, r := range map[uint64]Replacement{
		9: {Old: "n1", New: "n4"},
		1: {Old: "n4", New: "n5"},
	} {
		f.state.Replacing = map[uint64]Replacement{name: r}
		b, err := EncodeSnapshot(f.state)
		require.NoError(t, err)
		_, err = DecodeSnapshot(b)
		require.ErrorIs(t, err, ErrBadCommand, "%d %+v", name, r)
	}
	for _, r := range []Replacement{{Old: "n1", New: "n2"}, {Old: "n1", New: "x"}} {
		f.state.Replacing = map[uint64]Replacement{1: r}
		b, err := EncodeSnapshot(f.state)
		require.NoError(t, err)
		_, err = DecodeSnapshot(b)
		require.ErrorIs(t, err, ErrBadCommand, "%+v", r)
	}
}

func TestWithoutANewNodeTheFSMPicksItBySpread(t *testing.T) {
	f := NewFSM(0)
	for _, n := range []struct{ id, region string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}, {"b2", "b"}, {"c1", "c"}} {
		mustApply(t, f, Command{Op: OpAddNode, Node: n.id, Raft: n.id + ":1", HTTP: n.id + ":2", Region: n.region})
	}
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Voters: []string{"a1", "b1", "c1"}})
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 2, Voters: []string{"a2", "b1"}})
	// c1 leaves shard 1: a and b keep a voter each, so a2 or b2 (one
	// seat vs none): b2.
	res := mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "c1"})
	require.Equal(t, []string{"a1", "b1", "b2"}, res.Voters)
	require.Equal(t, "b2", res.New)
	// b1 leaves shard 2: region b has none left; b2 is joining shard 1
	// but holds no seat yet, and b is the region with fewest voters.
	res = mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 2, Node: "b1"})
	require.Equal(t, []string{"a2", "b2"}, res.Voters)

	full := replacing(t)
	mustApply(t, full, Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n1", "n2", "n3", "n4", "n5"}})
	_, err := applyTo(t, full, Command{Op: OpReplaceVoter, Shard: 2, Node: "n1"})
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, "no node can take n1's seat in shard 2")
	_, err = applyTo(t, full, Command{Op: OpReplaceVoter, Shard: 2, Node: "x"})
	require.ErrorContains(t, err, `"x" is not a voter of shard 2`)
}

// levelTwoMember answers the gate's probe as a binary from before voter
// replacements: it reads the group header and the probe byte and
// answers {"reads":2}.
func levelTwoMember(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				var b [11]byte // the group header and the probe byte
				if _, err := io.ReadFull(conn, b[:]); err != nil || b[10] != probeMagic {
					return
				}
				_ = writeFrame(conn, []byte(`{"reads":2}`))
			}()
		}
	}()
	return l.Addr().String()
}

// A member that reads level 2 (assign's expect, not replacements) closes
// the gate for replace_voter: refused before it enters the log.
func TestTheGateRefusesAReplacementWhileAMemberReadsLevelTwo(t *testing.T) {
	old := levelTwoMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "old", Address: raft.ServerAddress(old)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	require.Eventually(t, func() bool {
		_, err = c.group("n1").Propose(ctx, Command{Op: OpReplaceVoter, Shard: 1, Node: "n2", New: "n3"})
		return !errors.Is(err, ErrNotLeader)
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, err, ErrGate)
	require.ErrorContains(t, err, "member old reads 2")
	require.Empty(t, c.group("n1").fsm.Replacements(), "nothing applied")
	// A conditional assign (level 2) passes the same member.
	c.propose("n1", Command{Op: OpAssignWorld, World: "w", Shard: 1, Expect: ptr(c.group("n1").View().Map.ShardOf("w"))})
}

// replace_voter naming as the joiner a node the shard's Raft group still
// has a voter, though the map no longer lists it (replaced out, not yet
// removed by the shard's leader), is refused with a clear error, asked
// of the shard's leader (review of members14, bug 2).
func TestAReplacementRefusesAJoinerTheShardsGroupStillHasAVoter(t *testing.T) {
	c := newMetaClusterWith(t, 2, func(cfg *Config) { cfg.ReportInterval = 0 })
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1"}})
	for _, id := range []string{"n1", "n2"} {
		_, err := c.mgrs[id].Open(1, shard.GroupOptions{Bootstrap: true, Voters: c.servers})
		require.NoError(t, err)
	}
	var leader string
	require.Eventually(t, func() bool {
		for _, id := range []string{"n1", "n2"} {
			if st, ok := c.mgrs[id].Group(1); ok && st.IsLeader() {
				leader = id
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	c.propose("n1", Command{Op: OpReport, Node: leader, Leads: map[uint64]uint64{1: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	require.Eventually(t, func() bool {
		_, err = c.group("n1").Propose(ctx, Command{Op: OpReplaceVoter, Shard: 1, Node: "n1", New: "n2"})
		return !errors.Is(err, ErrNotLeader)
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, `node "n2" is still a voter of shard 1's Raft group`)
	require.Empty(t, c.group("n1").fsm.Replacements(), "nothing applied")
}
