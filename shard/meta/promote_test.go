package meta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// nonvoterMember is a meta member that answers the probe with this
// binary's read level and the applied index the test sets, until the
// test makes it go dark: from then on it accepts connections and never
// answers (blackholed). It answers after delay (a far node). Its
// connections close when the test ends.
type nonvoterMember struct {
	addr    string
	applied atomic.Uint64
	dark    atomic.Bool
	delay   atomic.Int64 // a time.Duration

	mu   sync.Mutex
	held []net.Conn // the connections it holds while dark
}

func newNonvoterMember(t *testing.T) *nonvoterMember {
	t.Helper()
	m := &nonvoterMember{}
	m.applied.Store(math.MaxUint64)
	m.addr, _ = serveConns(t, m.serve)
	return m
}

func (m *nonvoterMember) serve(conn net.Conn) {
	var b [11]byte // the group header and the first byte
	if _, err := io.ReadFull(conn, b[:]); err != nil || b[10] != probeMagic {
		conn.Close()
		return
	}
	if m.dark.Load() {
		m.mu.Lock()
		m.held = append(m.held, conn)
		m.mu.Unlock()
		_, _ = io.Copy(io.Discard, conn) // until the prober, light or the test closes it
		return
	}
	time.Sleep(time.Duration(m.delay.Load())) // a far node's round trips
	_ = writeFrame(conn, fmt.Appendf(nil, `{"reads":%d,"applied":%d}`, readsLevel, m.applied.Load()))
	conn.Close()
}

// light makes m answer again: the connections it held close, so the
// probes on them fail.
func (m *nonvoterMember) light() {
	m.dark.Store(false)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.held {
		c.Close()
	}
	m.held = nil
}

// nonvoterToPromote starts a 3-voter meta group that keeps 5 voters,
// lists x (a nonvoterMember) and a node that is down in its map, and
// has the leader add x as a nonvoter: the leader promotes x once it is
// caught up. The report loop is off: the test takes its ticks.
func nonvoterToPromote(t *testing.T) (c *metaCluster, g *Group, x *nonvoterMember) {
	t.Helper()
	x = newNonvoterMember(t)
	c = newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval, cfg.probeTimeout = 0, time.Hour })
	c.addNodes()
	c.propose("n1", Command{Op: OpAddNode, Node: "x", Raft: x.addr, HTTP: "h:x"})
	c.propose("n1", Command{Op: OpAddNode, Node: "y", Raft: downMember(t), HTTP: "h:y"})
	g = c.group(c.metaLeader())
	require.Eventually(t, func() bool { _, ok := g.fsm.members().nodes["y"]; return ok }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, g.raft.AddNonvoter("x", raft.ServerAddress(x.addr), 0, 5*time.Second).Error())
	return c, g, x
}

// tick takes one of the meta leader's member ticks (followMap) and waits
// for the probes it started.
func tick(t *testing.T, g *Group) {
	t.Helper()
	g.followMap()
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond, "the prober's probes end")
}

// voter reports whether the meta configuration holds id as a voter.
func (c *metaCluster) voter(id string) bool {
	for _, s := range c.metaConfig() {
		if string(s.ID) == id {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}

// A nonvoter that answered the prober caught up and then went dark
// (blackholed: it accepts the connection and never answers) is not
// promoted on that answer: the leader probes it again right before
// AddVoter, and a dead voter would cost the group a failure it
// survives. Answering again, it is promoted.
func TestANonvoterThatWentDarkAfterAnsweringCaughtUpIsNotPromoted(t *testing.T) {
	c, g, x := nonvoterToPromote(t)
	tick(t, g) // x's first probe
	tick(t, g) // its answer takes x's mark; the next probe answers caught up
	require.Contains(t, g.memberMarks, "x")
	require.False(t, c.voter("x"))

	x.dark.Store(true)
	g.followMap() // x's latest answer says it caught up
	require.False(t, c.voter("x"), "promoted on its old answer although it is dark")

	x.light()
	withAnswers(t, g, g.followMap)
	require.True(t, c.voter("x"), "answering caught up again, it is promoted")
}

// farDelay is how long a far node takes to answer a probe: longer than
// confirmWait, well within the probe timeout.
const farDelay = 700 * time.Millisecond

// A far nonvoter (its answers take longer than confirmWait: a dial and a
// TLS handshake over a long round trip) that caught up is promoted: the
// confirmation waits as long as its answers take. Before, the
// confirmation gave up after confirmWait however long the background
// probe's answer took, and the group stayed a voter short for good.
func TestAFarNonvoterThatCaughtUpIsPromoted(t *testing.T) {
	c, g, x := nonvoterToPromote(t)
	x.delay.Store(int64(farDelay))
	tick(t, g) // x's first probe
	tick(t, g) // its answer takes x's mark; the next probe answers caught up
	require.False(t, c.voter("x"))
	g.followMap()
	require.True(t, c.voter("x"), "its confirmation gave up before its answer came")
}

// A far node of the map (its answers take longer than confirmWait) is
// added as a nonvoter: the confirmation waits as long as its answers
// take.
func TestAFarNodeIsAdded(t *testing.T) {
	x := newNonvoterMember(t)
	x.delay.Store(int64(farDelay))
	c, g := nodeToAdd(t, x)
	g.followMap()
	require.True(t, listed("x", c.metaConfig()), "its confirmation gave up before its answer came")
}

// nodeToAdd starts a 3-voter meta group whose map lists x, and takes
// one tick of its leader's (the report loop is off), whose probe of x
// nominates it to add at the next.
func nodeToAdd(t *testing.T, x *nonvoterMember) (*metaCluster, *Group) {
	t.Helper()
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.ReportInterval, cfg.probeTimeout = 0, time.Hour })
	c.addNodes()
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, nil)
	c.propose("n1", Command{Op: OpAddNode, Node: "x", Raft: x.addr, HTTP: "h:x"})
	g := c.group(c.metaLeader())
	require.Eventually(t, func() bool { _, ok := g.fsm.members().nodes["x"]; return ok }, 10*time.Second, 5*time.Millisecond)
	tick(t, g) // x's probe
	require.False(t, listed("x", c.metaConfig()), "added before it answered")
	return c, g
}

// A confirmation waits twice as long as the node's last answer took, at
// least confirmWait (one that answered fast, or never), at most the
// probe timeout.
func TestAConfirmationWaitsAsLongAsTheNodesAnswersTake(t *testing.T) {
	for _, c := range []struct{ took, want time.Duration }{
		{0, confirmWait},
		{100 * time.Millisecond, confirmWait},
		{farDelay, 2 * farDelay},
		{time.Minute, probeTimeout},
	} {
		require.Equal(t, c.want, confirmBudget(c.took, confirmWait, probeTimeout), "last answer in %v", c.took)
	}
}

// The fresh answer must have the nonvoter applied up to the mark it was
// found caught up against: one wiped (or restored from an older
// snapshot) since its last answer is not promoted.
func TestANonvoterBehindItsMarkOnTheFreshAnswerIsNotPromoted(t *testing.T) {
	c, g, x := nonvoterToPromote(t)
	tick(t, g)
	tick(t, g)
	x.applied.Store(g.memberMarks["x"].index - 1)
	g.followMap()
	require.False(t, c.voter("x"), "promoted although its fresh answer is behind its mark")
}

// Answers and marks of an earlier leadership do not promote in a later
// one: the leader lost its leadership and won it back in a new term,
// and the nonvoter, which caught up with the log of then, trails the
// log of now. It is promoted only once it caught up with a mark of the
// new term.
func TestAnswersFromAnEarlierLeadershipDoNotPromote(t *testing.T) {
	c, g, x := nonvoterToPromote(t)
	tick(t, g)
	tick(t, g) // x's answer, caught up, waits for the next tick
	old := g.memberMarks["x"].index
	x.applied.Store(old) // x applies no more from now on
	term := g.raft.CurrentTerm()

	id := c.metaLeader()
	other := c.ids[(indexOf(c.ids, id)+1)%3]
	require.NoError(t, g.raft.LeadershipTransferToServer(raft.ServerID(other), c.servers[indexOf(c.ids, other)].Address).Error())
	require.Eventually(t, func() bool { return c.group(other).IsLeader() }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, c.group(other).raft.LeadershipTransferToServer(raft.ServerID(id), c.servers[indexOf(c.ids, id)].Address).Error())
	require.Eventually(t, g.IsLeader, 10*time.Second, 5*time.Millisecond)
	require.Greater(t, g.raft.CurrentTerm(), term)

	for range 3 {
		tick(t, g)
		require.False(t, c.voter("x"), "promoted on answers of an earlier leadership")
	}
	require.Greater(t, g.memberMarks["x"].index, old, "the new term's mark is past what x applied")
	x.applied.Store(math.MaxUint64)
	tick(t, g)
	tick(t, g)
	require.True(t, c.voter("x"), "caught up with the new term's log, it is promoted")
}

// flipOnConfirm makes g's next confirmation probe (the one a member
// step waits for, on the tick's goroutine: its context has a deadline,
// the background probes' has none) first hand g's meta leadership to
// another voter and win it back: a leadership lost and regained within
// one tick (term N to N+2). It returns the errors of the handovers.
func flipOnConfirm(t *testing.T, c *metaCluster, g *Group) (errs func() []error) {
	t.Helper()
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond)
	var mu sync.Mutex
	var out []error
	var once sync.Once
	probe := g.prober.probe
	wait := func(leader func() bool) error {
		for range 2000 {
			if leader() {
				return nil
			}
			time.Sleep(5 * time.Millisecond)
		}
		return fmt.Errorf("no leader after the handover")
	}
	g.prober.probe = func(ctx context.Context, addr raft.ServerAddress) (probeAnswer, error) {
		if _, confirming := ctx.Deadline(); confirming {
			once.Do(func() {
				id := c.metaLeader()
				other := c.ids[(indexOf(c.ids, id)+1)%3]
				err := errors.Join(g.raft.LeadershipTransferToServer(raft.ServerID(other), c.servers[indexOf(c.ids, other)].Address).Error(),
					wait(c.group(other).IsLeader),
					c.group(other).raft.LeadershipTransferToServer(raft.ServerID(id), c.servers[indexOf(c.ids, id)].Address).Error(),
					wait(g.IsLeader))
				mu.Lock()
				out = append(out, err)
				mu.Unlock()
			})
		}
		return probe(ctx, addr)
	}
	return func() []error {
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// A leadership lost and won back within one tick (while the nonvoter's
// confirmation probe is out) does not promote on the marks and answers
// of the tick's earlier term: the step checks the term right before
// AddVoter. The next ticks, in the new term, promote it on a mark of
// their own.
func TestALeadershipRegainedWithinATickDoesNotPromoteOnTheEarlierTerm(t *testing.T) {
	c, g, _ := nonvoterToPromote(t)
	tick(t, g)
	tick(t, g) // x's answer, caught up, nominates it at the next tick
	term := g.raft.CurrentTerm()
	errs := flipOnConfirm(t, c, g)
	tick(t, g)
	require.Equal(t, []error{nil}, errs(), "the leadership went and came back during the confirmation")
	require.Greater(t, g.raft.CurrentTerm(), term)
	require.False(t, c.voter("x"), "promoted in a later term on the tick's earlier one")
	require.Eventually(t, func() bool { tick(t, g); return c.voter("x") }, 20*time.Second, 5*time.Millisecond,
		"promoted on the new term's mark")
}

// Nor is a node added in a term later than the one its tick began in.
func TestALeadershipRegainedWithinATickDoesNotAdd(t *testing.T) {
	c, g := nodeToAdd(t, newNonvoterMember(t))
	errs := flipOnConfirm(t, c, g)
	tick(t, g)
	require.Equal(t, []error{nil}, errs())
	require.False(t, listed("x", c.metaConfig()), "added in a later term on the tick's earlier one")
	require.Eventually(t, func() bool { tick(t, g); return listed("x", c.metaConfig()) }, 20*time.Second, 5*time.Millisecond,
		"added in the new term")
}

// A node the map removed, or marked down, is known afresh: the answers
// the prober had of it from before are dropped once the leader applied
// the command (and at every tick while the map leaves it out), so they
// cannot drive a step if it is listed again.
func TestTheProberForgetsANodeTheMapRemovedOrMarkedDown(t *testing.T) {
	c, g, _ := nonvoterToPromote(t)
	tick(t, g)
	has := func(id string) bool {
		g.prober.mu.Lock()
		defer g.prober.mu.Unlock()
		for k := range g.prober.nodes {
			if k.id == id {
				return true
			}
		}
		return false
	}
	require.True(t, has("x"))
	require.True(t, has("y"))
	c.propose(c.metaLeader(), Command{Op: OpRemoveNode, Node: "x"})
	require.False(t, has("x"), "removed: forgotten once applied")
	require.True(t, has("y"))
	require.NoError(t, c.proposeAt(Command{Op: OpMarkDown, Nodes: []string{"y"}}))
	require.False(t, has("y"), "marked down: forgotten once applied")

	// A tick forgets what a probe in flight then recorded.
	g.prober.answers([]string{"x"}, map[string]raft.ServerAddress{"x": raft.ServerAddress(freeAddr(t))})
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond)
	require.True(t, has("x"))
	g.followMap()
	require.False(t, has("x"), "the map leaves it out")
}

// holeMember is a meta member that accepts every connection and never
// answers (a stalled process, a blackholing proxy); probes counts the
// connections that asked for the probe (Raft's own are held too).
// release closes the connections it holds, and every later one, so the
// probes on them fail.
type holeMember struct {
	addr   string
	probes atomic.Int64
	mu     sync.Mutex
	held   []net.Conn
	gone   bool
}

func newHoleMember(t *testing.T) *holeMember {
	t.Helper()
	h := &holeMember{}
	h.addr, _ = serveConns(t, func(conn net.Conn) {
		var b [11]byte // the group header and the first byte
		if _, err := io.ReadFull(conn, b[:]); err == nil && b[10] == probeMagic {
			h.probes.Add(1)
		}
		h.mu.Lock()
		if h.gone {
			conn.Close()
		}
		h.held = append(h.held, conn)
		h.mu.Unlock()
		_, _ = io.Copy(io.Discard, conn)
	})
	return h
}

func (h *holeMember) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gone = true
	for _, c := range h.held {
		c.Close()
	}
}

// A member of the meta group that accepts the gate's connection and
// never answers does not hold up the report loop's replacement steps:
// the joiner's voter_ready, which the gate holds for as long as the
// probe lasts (here the proposal's timeout, a minute), is proposed in
// the background, and the loop's ticks go on meanwhile. Before, the
// tick waited for the gate. Once the member is gone, the next tick's
// proposal passes the gate and the replacement finishes.
func TestABlackholedMetaMemberDoesNotHoldUpTheReplacementSteps(t *testing.T) {
	hole := newHoleMember(t)
	c := newMetaClusterWith(t, 4, func(cfg *Config) {
		cfg.ReportInterval, cfg.ApplyTimeout, cfg.probeTimeout = 0, time.Minute, time.Hour
	})
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
	tickAll := func() {
		for _, id := range c.ids {
			c.group(id).openShards()
			c.group(id).reconcile()
		}
	}
	var leader string
	require.Eventually(t, func() bool {
		tickAll()
		for _, id := range []string{"n1", "n2", "n3"} {
			if st, ok := c.mgrs[id].Group(1); ok && st.IsLeader() {
				leader = id
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "shard 1 has a leader")
	old := "n1"
	if leader == old {
		old = "n2"
	}
	c.propose("n1", Command{Op: OpReplaceVoter, Shard: 1, Node: old, New: "n4"})
	meta := c.group(c.metaLeader())
	require.NoError(t, meta.raft.AddNonvoter("hole", raft.ServerAddress(hole.addr), 0, 5*time.Second).Error())

	// Each tick returns while the gate's probe of the hole is held.
	require.Eventually(t, func() bool {
		tickAll()
		return hole.probes.Load() > 0
	}, 20*time.Second, 5*time.Millisecond, "the joiner's voter_ready waits on the gate's probe of the hole")
	for range 5 {
		tickAll()
	}
	require.Equal(t, int64(1), hole.probes.Load(), "one proposal of the step at a time")
	require.False(t, c.group("n4").fsm.Replacements()[1].Ready, "passed the gate without the hole's answer")

	require.NoError(t, meta.raft.RemoveServer("hole", 0, 5*time.Second).Error())
	hole.release() // the held probe fails: the proposal ends
	require.Eventually(t, func() bool {
		tickAll()
		sh, _ := c.group("n4").View().Map.Shard(1)
		return slices.Contains(sh.Voters, "n4") && !slices.Contains(sh.Voters, old)
	}, 20*time.Second, 5*time.Millisecond, "the replacement finishes")
}
