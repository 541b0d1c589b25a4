package meta

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// addableNode proposes add_node of a node answering with this binary's
// read level, has the meta leader's prober take its answer (one
// followMap, which does not add it yet: no answer when it asked), and
// returns its address, its stop and the leader.
func addableNode(t *testing.T, c *metaCluster) (x string, stop func(), g *Group) {
	t.Helper()
	x, stop, _ = countingMember(t, readsLevel)
	c.addNodes()
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, nil)
	c.propose("n1", Command{Op: OpAddNode, Node: "x", Raft: x, HTTP: "h:x"})
	g = c.group(c.metaLeader())
	require.Eventually(t, func() bool { _, ok := g.fsm.members().nodes["x"]; return ok }, 10*time.Second, 5*time.Millisecond)
	g.followMap() // starts the probe
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond)
	require.False(t, listed("x", c.metaConfig()), "not added before it answered")
	res, _ := g.prober.answers([]string{"x"}, map[string]raft.ServerAddress{"x": raft.ServerAddress(x)})
	require.Equal(t, readsLevel, res["x"].a.Reads, "the prober holds its answer")
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond)
	return x, stop, g
}

// A node that answered the prober with this read level and then came
// back on an older gsd at its address is not added on that answer: the
// leader probes it again right before the add. Upgraded, it is added.
func TestANodeBackOnAnOlderGsdAfterItsAnswerIsNotAdded(t *testing.T) {
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval = 0 })
	x, stop, g := addableNode(t, c)
	stop()
	_, stop, probes := countingMemberAt(t, x, readsLevel-1) // back on an older gsd
	g.followMap()
	require.False(t, listed("x", c.metaConfig()), "added on its old answer although it reads an older log")
	require.Positive(t, probes(), "the older gsd was probed before the add")
	stop()
	countingMemberAt(t, x, readsLevel) // upgraded
	withAnswers(t, g, g.followMap)
	require.True(t, listed("x", c.metaConfig()), "upgraded, it is added")
}

// A node that answered the prober and then died is not added on that
// answer.
func TestANodeDeadAfterItsAnswerIsNotAdded(t *testing.T) {
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval = 0 })
	_, stop, g := addableNode(t, c)
	stop()
	g.followMap()
	require.False(t, listed("x", c.metaConfig()), "added on its old answer although it is dead")
	res, _ := g.prober.answers(nil, nil)
	require.Empty(t, res)
	g.prober.mu.Lock()
	var failed bool
	for k, st := range g.prober.nodes {
		failed = failed || k.id == "x" && st.last.err != nil
	}
	g.prober.mu.Unlock()
	require.True(t, failed, "the failed confirmation is x's latest result: no candidate until it answers again")
}

// While a mark_down is being admitted and proposed on the meta leader
// (here held by its probe of a stalled node), the leader adds no node,
// even one that answers: admitDown decided from the configuration
// without it. Once the mark_down is done, the node is added.
func TestNoNodeIsAddedWhileAMarkDownIsBeingAdmitted(t *testing.T) {
	hole, accepted := stalledMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval, cfg.probeTimeout = 0, 3*time.Second })
	c.propose("n1", Command{Op: OpAddNode, Node: "hole", Raft: hole, HTTP: "h:hole"})
	_, _, g := addableNode(t, c)
	before := accepted() // the prober's
	done := make(chan error, 1)
	go func() {
		_, err := g.Propose(context.Background(), Command{Op: OpMarkDown, Nodes: []string{"hole"}})
		done <- err
	}()
	require.Eventually(t, func() bool { return accepted() > before }, 10*time.Second, time.Millisecond, "admitDown probes the node to mark")
	g.downMu.Lock()
	marking := g.markingDown
	g.downMu.Unlock()
	require.Equal(t, 1, marking)
	g.followMap()
	require.False(t, listed("x", c.metaConfig()), "added while a mark_down was being admitted")
	err := <-done
	require.ErrorIs(t, err, ErrRefused, "the stalled node accepts connections: not down")
	g.downMu.Lock()
	marking = g.markingDown
	g.downMu.Unlock()
	require.Zero(t, marking)
	withAnswers(t, g, g.followMap)
	require.True(t, listed("x", c.metaConfig()), "added once the mark_down is done")
}

// addNonvoter reads the map again before the probe and after it: a node
// marked down or removed by then is not probed, or not added.
func TestAddNonvoterChecksTheMapBeforeAndAfterItsProbe(t *testing.T) {
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval = 0 })
	x, _, probes := countingMember(t, readsLevel)
	g := c.group(c.metaLeader())
	added, err := g.addNonvoter(g.raft.CurrentTerm(), "x", raft.ServerAddress(x), func(members) bool { return false })
	require.NoError(t, err)
	require.False(t, added)
	require.Zero(t, probes(), "not probed: the map leaves it out")

	calls := 0
	added, err = g.addNonvoter(g.raft.CurrentTerm(), "x", raft.ServerAddress(x), func(members) bool { calls++; return calls == 1 })
	require.NoError(t, err)
	require.False(t, added, "left out of the map while it was probed")
	require.Equal(t, int64(1), probes())
	require.False(t, listed("x", c.metaConfig()))
}
