package meta

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// stalledMember is the address of a member that accepts connections and
// never answers (a stalled process, a blackholing proxy), and how many
// connections it accepted. Its connections close when the test ends.
func stalledMember(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	return serveConns(t, func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) })
}

// serveConns accepts connections at a loopback address and serves each
// on a goroutine of its own; it returns the address and how many
// connections it accepted. The listener and every connection close when
// the test ends.
func serveConns(t *testing.T, serve func(net.Conn)) (addr string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	var accepting, serving sync.WaitGroup
	accepting.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			serving.Go(func() { serve(conn) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		accepting.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		serving.Wait()
	})
	return l.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// A node of the map that accepts the probe's connection and never
// answers (its probe outlasts the test) does not hold up the meta
// leader's report loop: another node's member step and the leader's
// report still commit on later ticks, on this leader and the next.
func TestABlackholedNodeDoesNotStallTheMetaLeadersReportLoop(t *testing.T) {
	hole, accepted := stalledMember(t)
	c := newMetaClusterWith(t, 3, func(cfg *Config) { cfg.probeTimeout = time.Hour })
	c.addNodes()
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, nil)
	c.propose("n1", Command{Op: OpAddNode, Node: "hole", Raft: hole, HTTP: "h:hole"})
	require.Eventually(t, func() bool { return accepted() > 0 }, 10*time.Second, 5*time.Millisecond, "the leader probes the node to add")

	x, _ := fakeMember(t, readsLevel)
	c.propose("n1", Command{Op: OpAddNode, Node: "x", Raft: x, HTTP: "h:x"})
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, []string{"x"})

	// The next leader probes the blackholed node too, and reports that
	// it leads.
	old := c.metaLeader()
	next := c.ids[(indexOf(c.ids, old)+1)%3]
	require.NoError(t, c.group(old).raft.LeadershipTransferToServer(raft.ServerID(next), c.servers[indexOf(c.ids, next)].Address).Error())
	require.Eventually(t, func() bool { return c.group(next).View().Leaders[shard.MetaGroup] == next }, 10*time.Second, 5*time.Millisecond,
		"the new meta leader's report commits")
	require.Eventually(t, func() bool { return accepted() > 1 }, 10*time.Second, 5*time.Millisecond, "the new leader probes the node to add")
	c.propose(next, Command{Op: OpRemoveNode, Node: "x"})
	c.waitMetaMembers([]string{"n1", "n2", "n3"}, nil)
}

// idle reports whether no probe of p is in flight (of a node it knows,
// or one lead or forget dropped).
func (p *prober) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running == 0
}

// started is the number of probes p started.
func (p *prober) started() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// withAnswers takes step (one of the report loop's member steps:
// followMap, addNonvoters) as the report loop's ticks would, with the
// answers of probes it started: once the probes in flight ended, the
// prober forgets what it knows (answers and backoffs from before), the
// step starts the probes it needs, and once they answered it is taken
// again.
func withAnswers(t *testing.T, g *Group, step func()) {
	t.Helper()
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond, "the prober's probes end")
	g.prober.mu.Lock()
	clear(g.prober.nodes)
	g.prober.mu.Unlock()
	step()
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond, "the prober's probes end")
	step()
}

// stubProbe stands in for probeMember: each probe waits for an answer
// (or an error) from the test, or for ctx; calls counts the probes by
// address.
type stubProbe struct {
	next chan probed
	mu   sync.Mutex
	n    map[raft.ServerAddress]int
}

func newStubProbe() *stubProbe {
	return &stubProbe{next: make(chan probed), n: map[raft.ServerAddress]int{}}
}

func (s *stubProbe) probe(ctx context.Context, addr raft.ServerAddress) (probeAnswer, error) {
	s.mu.Lock()
	s.n[addr]++
	s.mu.Unlock()
	select {
	case r := <-s.next:
		return r.a, r.err
	case <-ctx.Done():
		return probeAnswer{}, ctx.Err()
	}
}

func (s *stubProbe) calls(addr raft.ServerAddress) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[addr]
}

// testProber is a prober over stub, stopped when the test ends.
func testProber(t *testing.T, stub *stubProbe) *prober {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := newProber(ctx, stub.probe, time.Hour)
	t.Cleanup(func() { cancel(); p.close() })
	return p
}

// A node has one probe in flight at most: asking again while it is
// starts none and returns the last answer; the answer starts the next.
func TestTheProberKeepsOneProbeInFlightPerNode(t *testing.T) {
	stub := newStubProbe()
	p := testProber(t, stub)
	addr := map[string]raft.ServerAddress{"a": "a:1"}
	for range 3 {
		res, _ := p.answers([]string{"a"}, addr)
		require.Empty(t, res, "no answer yet")
	}
	require.Equal(t, uint64(1), p.started(), "one probe started")
	require.Eventually(t, func() bool { return stub.calls("a:1") == 1 }, 10*time.Second, time.Millisecond)
	stub.next <- probed{a: probeAnswer{Reads: readsLevel, Applied: 7}}
	require.Eventually(t, p.idle, 10*time.Second, time.Millisecond)
	res, mark := p.answers([]string{"a"}, addr)
	require.Equal(t, uint64(1), mark, "one probe before this call")
	require.Equal(t, probeAnswer{Reads: readsLevel, Applied: 7}, res["a"].a)
	require.Equal(t, uint64(1), res["a"].seq)
	require.NoError(t, res["a"].err)
	require.Eventually(t, func() bool { return stub.calls("a:1") == 2 }, 10*time.Second, time.Millisecond, "the answer lets the next probe start")

	// The same node at another address is another node: the answer from
	// the old one says nothing of it.
	res, _ = p.answers([]string{"a"}, map[string]raft.ServerAddress{"a": "a:2"})
	require.Empty(t, res)
	require.Eventually(t, func() bool { return stub.calls("a:2") == 1 }, 10*time.Second, time.Millisecond)
}

// A node whose probe failed is probed again only after a backoff, which
// doubles with each failure up to a bound; an answer ends it.
func TestTheProberBacksOffAFailingNode(t *testing.T) {
	stub := newStubProbe()
	p := testProber(t, stub)
	p.backoffMin = time.Hour
	addr := map[string]raft.ServerAddress{"a": "a:1"}
	p.answers([]string{"a"}, addr)
	stub.next <- probed{err: errors.New("refused")}
	require.Eventually(t, p.idle, 10*time.Second, time.Millisecond)
	for range 3 {
		res, _ := p.answers([]string{"a"}, addr)
		require.ErrorContains(t, res["a"].err, "refused", "the failure is the latest result")
	}
	require.Equal(t, uint64(1), p.started(), "not probed again within the backoff")

	p.mu.Lock()
	p.backoffMin, p.backoffMax = time.Millisecond, time.Millisecond
	p.nodes[probeKey{"a", "a:1"}].retryAt = time.Time{}
	p.mu.Unlock()
	p.answers([]string{"a"}, addr)
	stub.next <- probed{a: probeAnswer{Reads: readsLevel}}
	require.Eventually(t, p.idle, 10*time.Second, time.Millisecond)
	p.mu.Lock()
	st := *p.nodes[probeKey{"a", "a:1"}]
	p.mu.Unlock()
	require.Zero(t, st.fails, "an answer ends the backoff")
	require.True(t, st.retryAt.IsZero())

	for _, c := range []struct {
		fails int
		want  time.Duration
	}{{1, 250 * time.Millisecond}, {2, 500 * time.Millisecond}, {5, 4 * time.Second}, {6, 5 * time.Second}, {1000, 5 * time.Second}} {
		require.Equal(t, c.want, backoff(probeBackoffMin, probeBackoffMax, c.fails), "after %d failures", c.fails)
	}
}

// An answer older than keep whose probe was not started at the node's
// previous ask is not used, and a node neither asked for within keep nor
// in the last forgetCalls calls is forgotten (unless its probe is in
// flight).
func TestTheProberForgetsOldAnswersAndNodes(t *testing.T) {
	stub := newStubProbe()
	p := testProber(t, stub)
	addr := map[string]raft.ServerAddress{"a": "a:1", "b": "b:1"}
	p.answers([]string{"a", "b"}, addr)
	stub.next <- probed{a: probeAnswer{Reads: readsLevel}}
	stub.next <- probed{a: probeAnswer{Reads: readsLevel}}
	require.Eventually(t, p.idle, 10*time.Second, time.Millisecond)
	p.mu.Lock()
	p.nodes[probeKey{"a", "a:1"}].last.at = time.Now().Add(-2 * time.Hour)
	p.nodes[probeKey{"a", "a:1"}].asks++ // asked again since, its probe unanswered
	p.nodes[probeKey{"b", "b:1"}].asked = time.Now().Add(-2 * time.Hour)
	p.mu.Unlock()
	for range forgetCalls {
		res, _ := p.answers([]string{"a"}, addr)
		require.Empty(t, res, "a's answer is too old")
		p.mu.Lock()
		_, kept := p.nodes[probeKey{"b", "b:1"}]
		p.mu.Unlock()
		require.True(t, kept, "b was asked for in the last %d calls", forgetCalls)
	}
	p.answers(nil, addr)
	p.mu.Lock()
	_, kept := p.nodes[probeKey{"b", "b:1"}]
	p.mu.Unlock()
	require.False(t, kept, "b, not asked for, is forgotten")
	require.Eventually(t, func() bool { return stub.calls("a:1") == 2 }, 10*time.Second, time.Millisecond, "a is asked again")

	// In flight, a node is kept however long ago it was asked for.
	p.mu.Lock()
	p.nodes[probeKey{"a", "a:1"}].asked = time.Now().Add(-2 * time.Hour)
	p.mu.Unlock()
	for range forgetCalls + 1 {
		p.answers(nil, addr)
	}
	p.mu.Lock()
	_, kept = p.nodes[probeKey{"a", "a:1"}]
	p.mu.Unlock()
	require.True(t, kept)
}

// Asked at intervals longer than keep (a report loop whose ticks are
// slow), the prober still answers: each ask gets the answer to the probe
// the previous one started, and the node is not forgotten between them.
func TestTheProberAnswersAskedMoreThanKeepApart(t *testing.T) {
	var probes atomic.Int64
	probe := func(context.Context, raft.ServerAddress) (probeAnswer, error) {
		probes.Add(1)
		return probeAnswer{Reads: readsLevel, Applied: uint64(probes.Load())}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := newProber(ctx, probe, time.Millisecond)
	t.Cleanup(func() { cancel(); p.close() })
	addr := map[string]raft.ServerAddress{"a": "a:1"}
	for i := range 5 {
		res, _ := p.answers([]string{"a"}, addr)
		if i == 0 {
			require.Empty(t, res, "no answer yet")
		} else {
			require.Equal(t, uint64(i), res["a"].a.Applied, "ask %d gets the answer to the probe ask %d started", i+1, i)
		}
		require.Eventually(t, p.idle, 10*time.Second, time.Millisecond)
		time.Sleep(5 * time.Millisecond) // more than keep: the answer is older than keep
	}
}

// A confirmation's result is the node's latest: the background probe in
// flight while it ran, older, does not replace it when it ends.
func TestAConfirmationOutranksTheProbeInFlightBeforeIt(t *testing.T) {
	stub := newStubProbe()
	p := testProber(t, stub)
	p.confirmMin = time.Hour // the stub answers when the test says
	addr := map[string]raft.ServerAddress{"a": "a:1"}
	p.answers([]string{"a"}, addr) // the background probe, held by stub
	require.Eventually(t, func() bool { return stub.calls("a:1") == 1 }, 10*time.Second, time.Millisecond)
	done := make(chan probeResult, 1)
	go func() { done <- p.confirm("a", "a:1", time.Hour) }()
	require.Eventually(t, func() bool { return stub.calls("a:1") == 2 }, 10*time.Second, time.Millisecond)
	stub.next <- probed{err: errors.New("refused")} // one of the two
	stub.next <- probed{a: probeAnswer{Reads: readsLevel}}
	r := <-done
	require.Eventually(t, p.idle, 10*time.Second, time.Millisecond)
	res, _ := p.answers([]string{"a"}, addr)
	require.Equal(t, r.seq, res["a"].seq, "the confirmation's result stays the latest")
	require.Equal(t, uint64(2), r.seq, "the confirmation started after the background probe")
	require.Equal(t, r.err, res["a"].err)
}

// Closed, the prober starts no probe, and close waits for the probes in
// flight, which the Group's context ends.
func TestAClosedProberStartsNoProbe(t *testing.T) {
	stub := newStubProbe()
	ctx, cancel := context.WithCancel(context.Background())
	p := newProber(ctx, stub.probe, time.Hour)
	p.answers([]string{"a"}, map[string]raft.ServerAddress{"a": "a:1"})
	cancel()
	p.close()
	require.True(t, p.idle())
	p.answers([]string{"b"}, map[string]raft.ServerAddress{"b": "b:1"})
	require.Equal(t, uint64(1), p.started(), "only a's probe, before close")
	require.True(t, p.idle())
}

// A nonvoter is caught up only on an answer to a probe started after its
// mark: an answer from before it (the next probe still in flight) does
// not count, however far ahead it says the nonvoter is.
func TestANonvoterIsCaughtUpOnlyOnAnAnswerAskedAfterItsMark(t *testing.T) {
	c := newMetaClusterWith(t, 1, func(cfg *Config) { cfg.ReportInterval = 0 }) // no loop: the test asks in its place
	g := c.group(c.metaLeader())
	stub := newStubProbe()
	g.prober.probe = stub.probe // no probe started yet
	ids, addr := []string{"x"}, map[string]raft.ServerAddress{"x": "x:1"}
	answer := func(applied uint64) {
		stub.next <- probed{a: probeAnswer{Reads: readsLevel, Applied: applied}}
		require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond)
	}
	require.Empty(t, g.caughtNonvoters(ids, addr), "no answer yet")
	answer(math.MaxUint64)
	require.Equal(t, map[string]bool{"x": false}, g.caughtNonvoters(ids, addr), "the first answer takes the mark only")
	mark := g.memberMarks["x"].index
	require.Positive(t, mark)
	require.Empty(t, g.caughtNonvoters(ids, addr), "the answer from before the mark does not count")
	answer(mark - 1)
	require.Equal(t, map[string]bool{"x": false}, g.caughtNonvoters(ids, addr), "behind the mark")
	answer(g.memberMarks["x"].index)
	require.Equal(t, map[string]bool{"x": true}, g.caughtNonvoters(ids, addr), "at the mark")

	// A failed probe is no answer: not caught up, and the mark stays.
	before := g.memberMarks["x"]
	stub.next <- probed{err: errors.New("refused")}
	require.Eventually(t, g.prober.idle, 10*time.Second, time.Millisecond)
	require.Empty(t, g.caughtNonvoters(ids, addr))
	require.Equal(t, before, g.memberMarks["x"])
}

// A new leadership term drops every answer and backoff of the earlier
// one, also the one that would serve until the next ask; a probe in
// flight across the change records its answer where the new term does
// not read it. The same term again keeps them.
func TestTheProberDropsTheAnswersOfAnEarlierTerm(t *testing.T) {
	stub := newStubProbe()
	p := testProber(t, stub)
	addr := map[string]raft.ServerAddress{"a": "a:1"}
	p.lead(1)
	p.answers([]string{"a"}, addr)
	stub.next <- probed{a: probeAnswer{Reads: readsLevel, Applied: 7}}
	require.Eventually(t, p.idle, 10*time.Second, time.Millisecond)
	p.lead(1)
	res, _ := p.answers([]string{"a"}, addr) // starts the next probe, held by stub
	require.Equal(t, uint64(7), res["a"].a.Applied, "the same term keeps its answers")
	require.Eventually(t, func() bool { return stub.calls("a:1") == 2 }, 10*time.Second, time.Millisecond)

	p.lead(2)
	res = answerThenAsk(t, p, stub, 8) // the term-1 probe ends
	require.Empty(t, res, "an answer asked for in term 1 counts in term 2")
	require.Eventually(t, func() bool { return stub.calls("a:1") == 3 }, 10*time.Second, time.Millisecond, "term 2 probes afresh")
	res = answerThenAsk(t, p, stub, 9)
	require.Equal(t, uint64(9), res["a"].a.Applied)
	require.Eventually(t, func() bool { return stub.calls("a:1") == 4 }, 10*time.Second, time.Millisecond)
}

// answerThenAsk has stub answer node a's probe in flight (at a:1) with
// applied, waits for the probe to end, and returns p's answers for a
// (which start its next probe).
func answerThenAsk(t *testing.T, p *prober, stub *stubProbe, applied uint64) map[string]probeResult {
	t.Helper()
	stub.next <- probed{a: probeAnswer{Reads: readsLevel, Applied: applied}}
	require.Eventually(t, p.idle, 10*time.Second, time.Millisecond, "the probe ends")
	res, _ := p.answers([]string{"a"}, map[string]raft.ServerAddress{"a": "a:1"})
	return res
}

// A probe still in flight when its node is forgotten (the map removed it
// or marked it down) records its answer where nobody reads it: the node,
// listed again, is known afresh, with no answer until a probe of its
// own answers.
func TestTheProberForgetsANodeWhoseProbeIsInFlight(t *testing.T) {
	stub := newStubProbe()
	p := testProber(t, stub)
	addr := map[string]raft.ServerAddress{"a": "a:1"}
	p.answers([]string{"a"}, addr) // held by stub
	require.Eventually(t, func() bool { return stub.calls("a:1") == 1 }, 10*time.Second, time.Millisecond)
	p.forget(func(id string) bool { return id == "a" })
	require.Empty(t, answerThenAsk(t, p, stub, 7), "the answer of a probe started before the node was forgotten counts")
	require.Eventually(t, func() bool { return stub.calls("a:1") == 2 }, 10*time.Second, time.Millisecond, "probed afresh")
	require.Equal(t, uint64(8), answerThenAsk(t, p, stub, 8)["a"].a.Applied)
}
