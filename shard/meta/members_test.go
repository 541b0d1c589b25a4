package meta

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestTheMetaGroupKeepsAnOddNumberOfVotersUpToItsCount(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 5, 6: 5, 9: 5} {
		require.Equal(t, want, metaVoters(5, n), "%d nodes", n)
	}
	require.Equal(t, 3, metaVoters(3, 7))
	require.Equal(t, 7, metaVoters(7, 8))
}

func nodesOf(ids ...string) map[string]Node {
	out := map[string]Node{}
	for _, id := range ids {
		out[id] = Node{Raft: id + ":1", HTTP: id + ":2"}
	}
	return out
}

func removedOf(ids ...string) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
}

func TestTheMetaLeaderBringsItsMembersToTheMapOneStepAtATime(t *testing.T) {
	all := func(string) bool { return true }
	none := func(string) bool { return false }
	five := []string{"n1", "n2", "n3", "n4", "n5"}
	regions := nodesOf("n1", "n2", "n3", "n4", "n5", "n6")
	for id, r := range map[string]string{"n1": "eu", "n2": "eu", "n3": "us", "n4": "eu", "n5": "eu", "n6": "us"} {
		n := regions[id]
		n.Region = r
		regions[id] = n
	}
	for name, tc := range map[string]struct {
		self    string
		nodes   map[string]Node
		removed map[string]bool
		config  []raft.Server
		caught  func(string) bool
		want    []step
	}{
		"an empty map changes nothing":           {"n1", nil, nil, servers([]string{"n1", "n2", "n3"}), all, nil},
		"nothing to do":                          {"n1", nodesOf(five...), nil, servers(five), all, nil},
		"no demotion above the count":            {"n1", nodesOf("n1", "n2", "n3", "n4"), nil, servers([]string{"n1", "n2", "n3", "n4"}), all, nil},
		"members the map does not list yet stay": {"n2", nodesOf("n1"), nil, servers(five), all, nil},
		"a new node joins as a nonvoter": {"n1", nodesOf("n1", "n2", "n3", "n4"), nil, servers([]string{"n1", "n2", "n3"}), all,
			[]step{{stepAddNonvoter, "n4"}}},
		"a nonvoter stays one while the count is met": {"n1", nodesOf("n1", "n2", "n3", "n4"), nil, servers([]string{"n1", "n2", "n3"}, "n4"), all, nil},
		"caught-up nonvoters are promoted up to the count": {"n1", nodesOf(five...), nil, servers([]string{"n1", "n2", "n3"}, "n4", "n5"), all,
			[]step{{stepPromote, "n4"}, {stepPromote, "n5"}}},
		"a nonvoter catching up is not promoted": {"n1", nodesOf(five...), nil, servers([]string{"n1", "n2", "n3"}, "n4", "n5"), none, nil},
		"promotion spreads over regions": {"n1", regions, nil, servers([]string{"n1", "n2", "n3"}, "n4", "n5", "n6"), all,
			[]step{{stepPromote, "n6"}, {stepPromote, "n4"}}},
		"a removed nonvoter leaves": {"n1", nodesOf("n1", "n2", "n3"), removedOf("n4"), servers([]string{"n1", "n2", "n3"}, "n4"), all,
			[]step{{stepRemove, "n4"}}},
		"a removed voter leaves when the voters left are enough": {"n1", nodesOf("n1", "n2", "n4", "n5"), removedOf("n3"), servers(five), all,
			[]step{{stepRemove, "n3"}}},
		"a removed voter of three leaves two": {"n2", nodesOf("n2", "n3"), removedOf("n1"), servers([]string{"n1", "n2", "n3"}), all,
			[]step{{stepRemove, "n1"}}},
		"a removed voter stays until its replacement votes": {"n1", nodesOf("n1", "n2", "n3", "n4", "n6"), removedOf("n5"), servers(five, "n6"), none, nil},
		"the replacement is promoted first": {"n1", nodesOf("n1", "n2", "n3", "n4", "n6"), removedOf("n5"), servers(five, "n6"), all,
			[]step{{stepPromote, "n6"}}},
		"then the removed voter leaves": {"n1", nodesOf("n1", "n2", "n3", "n4", "n6"), removedOf("n5"), servers([]string{"n1", "n2", "n3", "n4", "n5", "n6"}), all,
			[]step{{stepRemove, "n5"}}},
		"a removed leader hands its leadership to a listed voter": {"n3", nodesOf("n1", "n2"), removedOf("n3"), servers([]string{"n1", "n2", "n3"}), all,
			[]step{{stepTransfer, "n1"}}},
		"a removed leader hands on to a listed voter, not a removed one": {"n1", nodesOf("n3", "n4", "n5"), removedOf("n1", "n2"), servers(five), all,
			[]step{{stepRemove, "n2"}, {stepTransfer, "n3"}}},
		"a member whose address the map changed takes the new one": {"n1", nodesOf("n1", "n2", "n3"), nil,
			[]raft.Server{{ID: "n1", Address: "n1:1", Suffrage: raft.Voter}, {ID: "n2", Address: "old:9", Suffrage: raft.Voter}, {ID: "n3", Address: "n3:1", Suffrage: raft.Voter}}, all,
			[]step{{stepAddress, "n2"}}},
		"a removed leader with no listed voter promotes one, then hands on": {"n3", nodesOf("n1"), removedOf("n2", "n3"), servers([]string{"n2", "n3"}, "n1"), all,
			[]step{{stepPromote, "n1"}, {stepTransfer, "n1"}}},
		"a removed leader with no listed caught-up voter stays": {"n3", nodesOf("n1"), removedOf("n2", "n3"), servers([]string{"n2", "n3"}, "n1"), none, nil},
		"removals come before adds": {"n1", nodesOf("n1", "n2", "n3", "n9"), removedOf("n4"), servers([]string{"n1", "n2", "n3"}, "n4"), all,
			[]step{{stepRemove, "n4"}, {stepAddNonvoter, "n9"}}},
	} {
		require.Equal(t, tc.want, memberSteps(tc.self, members{nodes: tc.nodes, removed: tc.removed}, tc.config, tc.caught, 5), name)
	}
}

// metaConfig returns the meta group's configuration as its leader has it.
func (c *metaCluster) metaConfig() []raft.Server {
	c.t.Helper()
	f := c.group(c.metaLeader()).raft.GetConfiguration()
	require.NoError(c.t, f.Error())
	return f.Configuration().Servers
}

// waitMetaMembers waits until the meta leader's configuration has exactly
// voters as voters and nonvoters as nonvoters.
func (c *metaCluster) waitMetaMembers(voters, nonvoters []string) {
	c.t.Helper()
	var config []raft.Server
	require.Eventually(c.t, func() bool {
		config = c.metaConfig()
		var v, nv []string
		for _, s := range config {
			if s.Suffrage == raft.Voter {
				v = append(v, string(s.ID))
			} else {
				nv = append(nv, string(s.ID))
			}
		}
		slices.Sort(v)
		slices.Sort(nv)
		return slices.Equal(v, voters) && slices.Equal(nv, nonvoters)
	}, 20*time.Second, 10*time.Millisecond, "meta members: want voters %v nonvoters %v", voters, nonvoters)
}

// A node removed from the map leaves the meta group's configuration, and
// the group keeps serving (a quorum of the voters left).
func TestANodeRemovedFromTheMapLeavesTheMetaGroup(t *testing.T) {
	c := newMetaCluster(t, 5)
	c.addNodes()
	leader := c.metaLeader()
	gone := "n5"
	if leader == gone {
		gone = "n4"
	}
	c.propose(leader, Command{Op: OpRemoveNode, Node: gone})
	left := slices.DeleteFunc(slices.Clone(c.ids), func(id string) bool { return id == gone })
	c.waitMetaMembers(left, nil)
	c.propose(left[0], Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
	for _, id := range left {
		require.Eventually(t, func() bool { return len(c.group(id).View().Map.Shards) == 1 }, 10*time.Second, 5*time.Millisecond, id)
	}
}

// The meta leader removed from the map hands its leadership on first; a
// voter the map lists then removes it.
func TestAMetaLeaderRemovedFromTheMapHandsItsLeadershipOn(t *testing.T) {
	c := newMetaCluster(t, 5)
	c.addNodes()
	leader := c.metaLeader()
	c.propose(leader, Command{Op: OpRemoveNode, Node: leader})
	left := slices.DeleteFunc(slices.Clone(c.ids), func(id string) bool { return id == leader })
	require.Eventually(t, func() bool {
		for _, id := range left {
			if c.group(id).IsLeader() {
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "a listed node leads the meta group")
	c.waitMetaMembers(left, nil)
	c.propose(left[0], Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
}

// Nodes added to the map join the meta group: as nonvoters, then, while
// the group has fewer voters than it keeps, as voters once caught up.
func TestNodesAddedToTheMapJoinTheMetaGroup(t *testing.T) {
	c := newMetaClusterWith(t, 5, func(cfg *Config) {
		cfg.Servers = cfg.Servers[:3:3]
		if !slices.ContainsFunc(cfg.Servers, func(s raft.Server) bool { return string(s.ID) == cfg.ID }) {
			cfg.Bootstrap, cfg.Servers = false, nil // a node formed later: the leader adds it
		}
	})
	for _, s := range c.servers[:3] {
		id := string(s.ID)
		c.propose("n1", Command{Op: OpAddNode, Node: id, Raft: string(s.Address), HTTP: "http-" + id + ":80"})
	}
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, nil)
	add := func(s raft.Server) {
		id := string(s.ID)
		c.propose("n2", Command{Op: OpAddNode, Node: id, Raft: string(s.Address), HTTP: "http-" + id + ":80"})
	}
	add(c.servers[3])
	// With 4 nodes the group keeps 3 voters: n4 follows as a nonvoter.
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, []string{"n4"})
	require.Eventually(t, func() bool { return len(c.group("n4").View().Map.Nodes) == 4 }, 10*time.Second, 5*time.Millisecond)
	add(c.servers[4])
	c.waitMetaMembers(c.ids, nil)
	c.propose("n5", Command{Op: OpCreateShard, Shard: 1, Replicas: 5})
	require.Eventually(t, func() bool { return len(c.group("n5").View().Map.Shards) == 1 }, 10*time.Second, 5*time.Millisecond)
}

// remove_node keeps the removed node in the state (and its snapshot)
// until add_node lists it again; a snapshot that lists a node as both is
// refused.
func TestRemovedNodesAreKeptUntilAddedAgain(t *testing.T) {
	f := withNodes(t, 3)
	mustApply(t, f, Command{Op: OpRemoveNode, Node: "n2"})
	require.Equal(t, map[string]bool{"n2": true}, f.members().removed)
	require.NotContains(t, f.members().nodes, "n2")
	g := NewFSM(0)
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(snapshotOf(t, f)))))
	require.Equal(t, f.members(), g.members())

	mustApply(t, f, Command{Op: OpAddNode, Node: "n2", Raft: "10.0.0.2:7000", HTTP: "h:2"})
	require.Empty(t, f.members().removed)
	require.NotContains(t, string(snapshotOf(t, f)), `"removed"`, "no removed nodes: the snapshot reads as before")

	s := NewState()
	s.Nodes["n1"] = Node{Raft: "h:1", HTTP: "h:2"}
	s.Removed["n1"] = true
	b, err := EncodeSnapshot(s)
	require.NoError(t, err)
	_, err = DecodeSnapshot(b)
	require.ErrorIs(t, err, ErrBadCommand)
}

// Membership steps are decided from the map and the configuration as
// they are: a removal the old leader never took (it went down right
// after remove_node) is taken by its successor.
func TestANewMetaLeaderFinishesARemovalTheOldOneDidNotTake(t *testing.T) {
	c := newMetaClusterWith(t, 5, func(cfg *Config) { cfg.ReportInterval = 0 }) // no loop: the test takes the steps
	c.addNodes()
	old := c.metaLeader()
	gone := "n5"
	if old == gone {
		gone = "n4"
	}
	c.propose(old, Command{Op: OpRemoveNode, Node: gone})
	require.NoError(t, c.mgrs[old].CloseGroup(context.Background(), shard.MetaGroup))
	c.mu.Lock()
	delete(c.groups, old)
	c.mu.Unlock()

	// Whichever node leads now takes the step (asked again should the
	// leadership move meanwhile).
	require.Eventually(t, func() bool {
		g := c.group(c.metaLeader())
		if !g.fsm.members().removed[gone] {
			return false // its replica has not applied the removal yet
		}
		g.followMap()
		return !listed(gone, c.metaConfig())
	}, 10*time.Second, 10*time.Millisecond, "the new leader removes %s", gone)
	var left []string
	for _, id := range c.ids {
		if id != gone {
			left = append(left, id)
		}
	}
	c.waitMetaMembers(left, nil)
	c.group(c.metaLeader()).followMap()
	c.waitMetaMembers(left, nil) // nothing more to do: the old leader stays, down, a voter the map lists
}

// A member is caught up once it applied the leader's last index of the
// previous ask; one that does not answer never is.
func TestANonvoterIsCaughtUpOnceItAppliedThePreviousMark(t *testing.T) {
	// No report loop: the marks are its only, and this test asks in its
	// place.
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval = 0 })
	c.addNodes()
	leader := c.metaLeader()
	g := c.group(leader)
	other := "n1"
	if other == leader {
		other = "n2"
	}
	addr := map[string]raft.ServerAddress{other: raft.ServerAddress(c.muxes[other].Addr().String()), "gone": raft.ServerAddress(freeAddr(t))}
	ids := []string{other, "gone"}
	require.Empty(t, g.caughtNonvoters(ids, addr), "no answer yet: the prober asks")
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond)
	require.Equal(t, map[string]bool{other: false}, g.caughtNonvoters(ids, addr), "no mark yet; gone does not answer")
	require.Eventually(t, func() bool { return g.caughtNonvoters(ids, addr)[other] }, 10*time.Second, 10*time.Millisecond)
	require.NotContains(t, g.caughtNonvoters(ids, addr), "gone")
}

// A removed leader whose map lists no voter yet promotes the caught-up
// nonvoters it lists, then hands over (review of members14, bug 4).
func TestARemovedLeaderWithNoListedVoterPromotesThenHandsOver(t *testing.T) {
	steps := memberSteps("a", members{nodes: nodesOf("d", "e", "f"), removed: removedOf("a", "b", "c")},
		servers([]string{"a", "b", "c"}, "d", "e", "f"), func(string) bool { return true }, 5)
	require.Equal(t, []step{{stepPromote, "d"}, {stepPromote, "e"}, {stepPromote, "f"}, {stepTransfer, "d"}}, steps)
}

// Two voters removed at once, the leader one of them: the leadership
// goes to a voter the map lists, which removes both, instead of passing
// between the two removed ones (review of members14, bug 1).
func TestTwoRemovedVotersDoNotPassTheLeadershipBackAndForth(t *testing.T) {
	c := newMetaClusterWith(t, 5, func(cfg *Config) { cfg.ReportInterval = 0 })
	c.addNodes()
	if l := c.metaLeader(); l != "n1" {
		require.NoError(t, c.group(l).raft.LeadershipTransferToServer("n1", c.servers[0].Address).Error())
	}
	c.propose("n3", Command{Op: OpRemoveNode, Node: "n1"})
	c.propose("n3", Command{Op: OpRemoveNode, Node: "n2"})
	var leaders []string
	for range 8 {
		l := c.metaLeader()
		g := c.group(l)
		require.Eventually(t, func() bool { r := g.fsm.members().removed; return r["n1"] && r["n2"] }, 10*time.Second, 5*time.Millisecond)
		leaders = append(leaders, l)
		g.followMap()
		if cf := c.metaConfig(); !listed("n1", cf) && !listed("n2", cf) {
			return
		}
	}
	t.Fatalf("leaders stepping: %v", leaders)
}

// The same with the report loop on: the meta group ends with the three
// nodes the map lists.
func TestTwoRemovedVotersLeaveTheMetaGroupWithTheLoopOn(t *testing.T) {
	c := newMetaClusterWith(t, 5, func(cfg *Config) { cfg.ReportInterval = 300 * time.Millisecond })
	c.addNodes()
	if l := c.metaLeader(); l != "n1" {
		require.NoError(t, c.group(l).raft.LeadershipTransferToServer("n1", c.servers[0].Address).Error())
	}
	c.propose("n3", Command{Op: OpRemoveNode, Node: "n1"})
	c.propose("n3", Command{Op: OpRemoveNode, Node: "n2"})
	c.waitMetaMembers([]string{"n3", "n4", "n5"}, nil)
}

// A machine rebuilt under a new id at a removed node's Raft address
// joins the meta group: the removal goes first, and an add raft refuses
// does not hold it up. add_node refuses an address another node of the
// map has, with a clear error (review of members14, bug 3).
func TestANodeAtARemovedNodesAddressJoinsTheMetaGroup(t *testing.T) {
	c := newMetaCluster(t, 4)
	c.addNodes()
	c.waitMetaMembers([]string{"n1", "n2", "n3", "n4"}, nil)
	n4 := c.servers[3].Address
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	require.Eventually(t, func() bool {
		_, err = c.group("n1").Propose(ctx, Command{Op: OpAddNode, Node: "n9", Raft: string(n4), HTTP: "http-n9:80"})
		return !errors.Is(err, ErrNotLeader)
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorContains(t, err, `node "n4" has the Raft address`)

	c.propose("n1", Command{Op: OpRemoveNode, Node: "n4"})
	c.propose("n1", Command{Op: OpAddNode, Node: "n9", Raft: string(n4), HTTP: "http-n9:80"})
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, []string{"n9"})
}

// A new meta leader whose FSM lags its log waits for it before it
// changes members: from the map it had, it took out a member that a
// committed add_node had listed again (review of dead14: no Barrier in
// followMap).
func TestANewMetaLeaderWaitsForItsMapBeforeChangingMembers(t *testing.T) {
	x, _ := fakeMember(t, readsLevel)
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval = 0 })
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "x", Raft: x, HTTP: "h:2"})
	leader := c.metaLeader()
	require.NoError(t, c.group(leader).raft.AddNonvoter("x", raft.ServerAddress(x), 0, 5*time.Second).Error())
	c.propose(leader, Command{Op: OpRemoveNode, Node: "x"})
	lag := c.ids[(indexOf(c.ids, leader)+1)%3]
	require.Eventually(t, func() bool { return c.group(lag).fsm.members().removed["x"] }, 10*time.Second, 5*time.Millisecond)

	// lag's FSM stops applying; x is listed again, committed without it.
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	wait := func() { <-hold }
	c.group(lag).fsm.beforeApply.Store(&wait)
	c.propose(leader, Command{Op: OpAddNode, Node: "x", Raft: x, HTTP: "h:2"})
	require.NoError(t, c.group(leader).raft.LeadershipTransferToServer(raft.ServerID(lag), c.servers[indexOf(c.ids, lag)].Address).Error())
	require.Eventually(t, func() bool { return c.group(lag).IsLeader() }, 10*time.Second, 5*time.Millisecond)
	require.True(t, c.group(lag).fsm.members().removed["x"], "lag's map is behind its log")

	done := make(chan struct{})
	go func() {
		defer close(done)
		c.group(lag).followMap()
	}()
	select {
	case <-done: // acted without waiting: what the map said then counts
	case <-time.After(time.Second):
	}
	release()
	<-done
	require.True(t, listed("x", c.metaConfig()), "x, listed again, stays a member")
}
