package meta

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestMarkDownTakesNodesOfTheMapOnly(t *testing.T) {
	for name, c := range map[string]Command{
		"no nodes":       {Op: OpMarkDown},
		"an empty id":    {Op: OpMarkDown, Nodes: []string{""}},
		"a node twice":   {Op: OpMarkDown, Nodes: []string{"n1", "n1"}},
		"with a node":    {Op: OpMarkDown, Nodes: []string{"n1"}, Node: "n1"},
		"nodes on a add": {Op: OpAddNode, Node: "n1", Raft: "h:1", HTTP: "h:2", Nodes: []string{"n1"}},
	} {
		_, err := c.Encode()
		require.ErrorIs(t, err, ErrBadCommand, name)
	}
	f := withNodes(t, 4)
	_, err := applyTo(t, f, Command{Op: OpMarkDown, Nodes: []string{"n2", "x"}})
	require.ErrorIs(t, err, ErrNotFound)
	require.Empty(t, f.Down(), "a refused mark changes nothing")

	mustApply(t, f, Command{Op: OpMarkDown, Nodes: []string{"n2"}})
	mustApply(t, f, Command{Op: OpMarkDown, Nodes: []string{"n2"}}) // again: the same
	require.Equal(t, []string{"n2"}, f.Down())
	m := f.members()
	require.NotContains(t, m.nodes, "n2", "the meta group's members leave it out")
	require.True(t, m.leaves("n2"))
	require.Contains(t, f.View().Map.Nodes, "n2", "still a node of the map")
	res := mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
	require.Equal(t, []string{"n1", "n3", "n4"}, res.Voters, "a node marked down gets no seat")
	_, err = applyTo(t, f, Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n1", "n2"}})
	require.ErrorContains(t, err, `voter "n2" is marked down`)

	mustApply(t, f, Command{Op: OpAddNode, Node: "n2", Raft: "10.0.0.2:7000", HTTP: "10.0.0.2:8080"})
	require.Empty(t, f.Down(), "add_node lists it again")
	mustApply(t, f, Command{Op: OpMarkDown, Nodes: []string{"n2"}})
	mustApply(t, f, Command{Op: OpRemoveNode, Node: "n2"})
	require.Empty(t, f.Down(), "removed, not down")
	require.True(t, f.members().removed["n2"])
}

// The FSM's own pick (replace_voter without new) never names a node
// marked down, and refuses one named as new; it may name the voter a
// replacement just took out (as before mark_down: the joiner's guard
// keeps its data), so an old log picks as it did.
func TestTheFSMsPickSkipsNodesMarkedDown(t *testing.T) {
	f := withNodes(t, 5)
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
	mustApply(t, f, Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n3", "n4", "n5"}})
	res := mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n1"})
	require.Equal(t, "n4", res.New)
	mustApply(t, f, Command{Op: OpVoterReady, Shard: 1, New: "n4"})
	mustApply(t, f, Command{Op: OpReplaceDone, Shard: 1, Node: "n1", New: "n4"})

	// n1 holds no seat now: shard 1 picks it back.
	res = mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n4"})
	require.Equal(t, "n1", res.New, "the voter just replaced out is picked by seats")
	mustApply(t, f, Command{Op: OpVoterReady, Shard: 1, New: "n1"})
	mustApply(t, f, Command{Op: OpReplaceDone, Shard: 1, Node: "n4", New: "n1"})

	// Shard 2 (n3, n4, n5): n1 (one seat, the lowest id) is its pick,
	// unless marked down; then n2.
	mustApply(t, f, Command{Op: OpMarkDown, Nodes: []string{"n1"}})
	res = mustApply(t, f, Command{Op: OpReplaceVoter, Shard: 2, Node: "n5"})
	require.Equal(t, "n2", res.New, "not n1: marked down")

	// Shard 1 (n1, n2, n3): n4 and n5 are voters of shard 2 only; with
	// both marked down nobody is left.
	mustApply(t, f, Command{Op: OpMarkDown, Nodes: []string{"n4", "n5"}})
	_, err := applyTo(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n3"})
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, "every node is a voter of it or marked down")
	_, err = applyTo(t, f, Command{Op: OpReplaceVoter, Shard: 1, Node: "n3", New: "n4"})
	require.ErrorContains(t, err, `node "n4" is marked down`)

	// Down marks are in snapshots, and checked there.
	b, err := EncodeSnapshot(f.state)
	require.NoError(t, err)
	s, err := DecodeSnapshot(b)
	require.NoError(t, err)
	require.Equal(t, f.state, s)
	s.Down["x"] = true
	bb, err := EncodeSnapshot(s)
	require.NoError(t, err)
	_, err = DecodeSnapshot(bb)
	require.ErrorIs(t, err, ErrBadCommand, "down, no node")
}

// fakeMember is a meta member that answers the gate's probe with reads
// (0: reads the probe and closes, as a binary from before the probe);
// stop closes its listener, so it is down from then on.
func fakeMember(t *testing.T, reads int) (addr string, stop func()) {
	t.Helper()
	addr, stop, _ = countingMember(t, reads)
	return addr, stop
}

// downMember is the address of a member that is down: nothing listens
// there.
func downMember(t *testing.T) string {
	t.Helper()
	addr, stop := fakeMember(t, readsLevel)
	stop()
	return addr
}

// countingMember is fakeMember that also counts the probes it was sent.
func countingMember(t *testing.T, reads int) (addr string, stop func(), probes func() int64) {
	t.Helper()
	return countingMemberAt(t, "127.0.0.1:0", reads)
}

// countingMemberAt is countingMember listening at addr (a member back at
// its address).
func countingMemberAt(t *testing.T, at string, reads int) (addr string, stop func(), probes func() int64) {
	t.Helper()
	var n atomic.Int64
	l, err := net.Listen("tcp", at)
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
				var b [11]byte // the group header and the first byte
				if _, err := io.ReadFull(conn, b[:]); err != nil || b[10] != probeMagic {
					return
				}
				n.Add(1)
				if reads == 0 {
					return
				}
				_ = writeFrame(conn, []byte(`{"reads":`+strconv.Itoa(reads)+`}`))
			}()
		}
	}()
	return l.Addr().String(), func() { l.Close() }, n.Load
}

// proposeAt proposes c at the meta leader until one answers, and returns
// its error.
func (c *metaCluster) proposeAt(cmd Command) error {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	require.Eventually(c.t, func() bool {
		_, err = c.group(c.metaLeader()).Propose(ctx, cmd)
		return !errors.Is(err, ErrNotLeader)
	}, 20*time.Second, 10*time.Millisecond)
	return err
}

// A member on an older gsd that is alive still closes the gate, and
// cannot be marked down; once it is down, it can, and the gate no
// longer waits for it.
func TestAnAliveMemberOnAnOlderReadLevelIsStillWaitedFor(t *testing.T) {
	old, stop := fakeMember(t, 3)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "old", Address: raft.ServerAddress(old)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "old", Raft: old, HTTP: "h:2"})
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2"}})
	err := c.proposeAt(Command{Op: OpReplaceVoter, Shard: 1, Node: "n2"})
	require.ErrorIs(t, err, ErrGate)
	require.ErrorContains(t, err, "member old reads 3")
	err = c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"old"}})
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, `node "old" answers (it reads level 3): it is not down`)
	require.True(t, listed("old", c.metaConfig()), "still a member")
	require.Empty(t, c.group("n1").fsm.Down())

	stop()
	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"old"}}))
	require.False(t, listed("old", c.metaConfig()), "out of the meta group before the mark applied")
	res := c.propose("n2", Command{Op: OpReplaceVoter, Shard: 1, Node: "n2"})
	require.Equal(t, "n3", res.New)
}

// Two dead members, both still in the map and the meta group: each one's
// removal waited for the other. Marked down together, both leave the
// meta group, and then both can be removed.
func TestTwoDeadMembersAreMarkedDownTogetherThenRemoved(t *testing.T) {
	a, b := downMember(t), downMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.Servers = append(cfg.Servers,
			raft.Server{Suffrage: raft.Nonvoter, ID: "a", Address: raft.ServerAddress(a)},
			raft.Server{Suffrage: raft.Nonvoter, ID: "b", Address: raft.ServerAddress(b)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "a", Raft: a, HTTP: "h:2"})
	c.propose("n1", Command{Op: OpAddNode, Node: "b", Raft: b, HTTP: "h:3"})
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, []string{"a", "b"})
	err := c.proposeAt(Command{Op: OpRemoveNode, Node: "a"})
	require.ErrorIs(t, err, ErrGate, "b closes the gate for a's removal")
	err = c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"a"}})
	require.ErrorIs(t, err, ErrGate, "and for a's mark alone")
	require.ErrorContains(t, err, "member b did not answer")

	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"a", "b"}}))
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, nil)
	c.propose("n2", Command{Op: OpRemoveNode, Node: "a"})
	c.propose("n2", Command{Op: OpRemoveNode, Node: "b"})
	require.NotContains(t, c.group("n2").View().Map.Nodes, "a")
	require.NotContains(t, c.group("n2").View().Map.Nodes, "b")
}

// The leader adds a node of the map to the meta group only once it
// answers with this binary's read level: one on an older gsd would get
// entries and snapshots it cannot read.
func TestANodeOnAnOlderReadLevelIsNotAddedToTheMetaGroup(t *testing.T) {
	older, _ := fakeMember(t, readsLevel-1)
	same, _ := fakeMember(t, readsLevel)
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval = 0 })
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "older", Raft: older, HTTP: "h:2"})
	c.propose("n1", Command{Op: OpAddNode, Node: "same", Raft: same, HTTP: "h:3"})
	leader := c.metaLeader()
	require.Eventually(t, func() bool { return len(c.group(leader).fsm.members().nodes) == 5 }, 10*time.Second, 5*time.Millisecond)
	withAnswers(t, c.group(leader), c.group(leader).followMap)
	config := c.metaConfig()
	require.True(t, listed("same", config))
	require.False(t, listed("older", config))
}

// With the members left as formed (--meta-voters 0), a nonvoter of the
// first configuration that was marked down is not added back, though it
// is back at its address and answers as a member of this level would.
func TestWithMembersAsFormedANodeMarkedDownIsNotAddedBack(t *testing.T) {
	gone := downMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		cfg.ReportInterval, cfg.Voters = 0, 0
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: "gone", Address: raft.ServerAddress(gone)})
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "gone", Raft: gone, HTTP: "h:2"})
	leader := c.metaLeader()
	c.group(leader).addNonvoters()
	require.True(t, listed("gone", c.metaConfig()))
	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"gone"}}))
	leader = c.metaLeader()
	require.Eventually(t, func() bool { return len(c.group(leader).fsm.Down()) == 1 }, 10*time.Second, 5*time.Millisecond)
	countingMemberAt(t, gone, readsLevel) // back, answering: only the down mark keeps it out
	withAnswers(t, c.group(leader), c.group(leader).addNonvoters)
	require.False(t, listed("gone", c.metaConfig()), "not added back")
}

// stopNode stops node id for good: its groups, the meta group's member
// among them, and its listener.
func (c *metaCluster) stopNode(id string) {
	c.t.Helper()
	require.NoError(c.t, c.mgrs[id].Close(context.Background()))
	require.NoError(c.t, c.muxes[id].Close())
}

// A node stopped for good, a voter of two shards: the gate waits for it
// (it does not answer), so its shards cannot be evacuated, until it is
// marked down; then each shard replaces it with a node that is alive,
// writes go on, and it is removed from the map.
func TestADeadNodesShardsAreEvacuatedOnceItIsMarkedDown(t *testing.T) {
	c := newMetaCluster(t, 4)
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
	c.propose("n1", Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n2", "n3", "n4"}})
	worlds := map[string]uint64{"a": 1, "b": 2}
	for w, s := range worlds {
		c.propose("n1", Command{Op: OpAssignWorld, World: w, Shard: s})
		leader := c.shardLeader(w)
		loc, err := c.routers[leader].Locate(w)
		require.NoError(t, err)
		require.NoError(t, loc.Store.CreateWorld(context.Background(), w, fsm.Rules{}))
	}
	c.stopNode("n3")
	c.ids = slices.DeleteFunc(c.ids, func(id string) bool { return id == "n3" })

	err := c.proposeAt(Command{Op: OpReplaceVoter, Shard: 1, Node: "n3"})
	require.ErrorIs(t, err, ErrGate)
	require.ErrorContains(t, err, "member n3 did not answer")
	require.ErrorContains(t, err, "mark it down (gsdctl node down n3)")

	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"n3"}}))
	want := map[uint64][]string{1: {"n1", "n2", "n4"}, 2: {"n1", "n2", "n4"}}
	for _, s := range []uint64{1, 2} {
		res := c.propose("n2", Command{Op: OpReplaceVoter, Shard: s, Node: "n3"})
		require.NotEqual(t, "n3", res.New)
		require.Eventually(t, func() bool {
			sh, _ := c.group("n2").View().Map.Shard(s)
			return slices.Equal(sh.Voters, want[s]) && c.configVoters(s) == 3
		}, 30*time.Second, 10*time.Millisecond, "shard %d replaces n3", s)
	}
	// Writes go on, and the three voters of each shard agree.
	for w, s := range worlds {
		var st = c.leaderStore(w)
		require.Eventually(t, func() bool { st = c.leaderStore(w); return st != nil }, 10*time.Second, 5*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ev, _, err := st.Act(ctx, &fsm.Action{World: w, Player: "p", Seq: 1, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
		cancel()
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			var seqs []uint64
			for _, id := range want[s] {
				if g, ok := c.mgrs[id].Group(s); ok {
					for _, info := range g.Worlds() {
						if info.ID == w {
							seqs = append(seqs, info.Seq)
						}
					}
				}
			}
			return len(seqs) == 3 && seqs[0] == ev.Seq && seqs[1] == ev.Seq && seqs[2] == ev.Seq
		}, 20*time.Second, 10*time.Millisecond, "shard %d's voters hold %s's write", s, w)
	}
	c.propose("n2", Command{Op: OpRemoveNode, Node: "n3"})
	require.NotContains(t, c.group("n2").View().Map.Nodes, "n3")
}
