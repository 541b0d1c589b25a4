package play

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// slowAcks leaves ack replication to the tests: the interval never ends
// within one, so only flushes and the rounds a test runs replicate.
func slowAcks(c *nodeConfig) { c.Play.AckInterval = time.Hour }

// ackBatches returns the node's ack batch counts: ok and failed.
func ackBatches(s *testServer) (ok, failed float64) {
	return testutil.ToFloat64(s.acks.batches.WithLabelValues("ok")), testutil.ToFloat64(s.acks.batches.WithLabelValues("error"))
}

// playersAcked connects n players to url, moves the world past the
// sessions' start and has each client ack the event; it returns the
// connections and session ids, once the server has taken every ack.
func playersAcked(t *testing.T, srv *testServer, url string, n int, act func(seq int) uint64) ([]*websocket.Conn, []string) {
	t.Helper()
	var conns []*websocket.Conn
	var ids []string
	for i := range n {
		c := dialPlay(t, url)
		w := welcome(t, c, fmt.Sprintf("p%d", i))
		conns, ids = append(conns, c), append(ids, w["session"].(string))
	}
	seq := act(1)
	for _, c := range conns {
		require.Equal(t, []uint64{seq}, nextEvents(t, c, 1))
		wsSend(t, c, map[string]any{"type": "ack", "seq": seq})
	}
	require.Eventually(t, func() bool {
		cs := srv.playConns()
		for _, c := range cs {
			if c.acked.Load() != seq {
				return false
			}
		}
		return len(cs) == n
	}, 10*time.Second, 5*time.Millisecond)
	return conns, ids
}

func TestPlayAcksOfManyConnectionsReplicateInOneCommandPerRound(t *testing.T) {
	n := startLeaderWith(t, slowAcks)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	srv := n.env.srv
	conns, ids := playersAcked(t, srv, n.env.WSURL("arena"), 20, func(seq int) uint64 {
		return act(t, n, actBody("bob", seq))
	})
	ok, failed := ackBatches(srv)
	require.Equal(t, [2]float64{0, 0}, [2]float64{ok, failed}, "nothing replicated before the interval ends")

	srv.acks.round(context.Background())
	ok, failed = ackBatches(srv)
	require.Equal(t, [2]float64{1, 0}, [2]float64{ok, failed}, "one command for all the connections")
	require.Equal(t, float64(20), testutil.ToFloat64(srv.acks.acks))
	for _, id := range ids {
		s, err := n.st.SessionInfo("arena", id)
		require.NoError(t, err)
		require.Equal(t, uint64(1), s.Acked, id)
	}

	// Nothing moved: nothing to replicate.
	srv.acks.round(context.Background())
	ok, _ = ackBatches(srv)
	require.Equal(t, float64(1), ok)
	// Three acks move: one command with those three.
	seq := act(t, n, actBody("bob", 2))
	for _, c := range conns[:3] {
		require.Equal(t, []uint64{seq}, nextEvents(t, c, 1))
		wsSend(t, c, map[string]any{"type": "ack", "seq": seq})
	}
	require.Eventually(t, func() bool {
		moved := 0
		for _, c := range srv.playConns() {
			if c.acked.Load() == seq {
				moved++
			}
		}
		return moved == 3
	}, 10*time.Second, 5*time.Millisecond)
	srv.acks.round(context.Background())
	ok, _ = ackBatches(srv)
	require.Equal(t, float64(2), ok)
	require.Equal(t, float64(23), testutil.ToFloat64(srv.acks.acks))
	acked := 0
	for _, id := range ids {
		s, err := n.st.SessionInfo("arena", id)
		require.NoError(t, err)
		if s.Acked == seq {
			acked++
		}
	}
	require.Equal(t, 3, acked)
}

func TestPlayAcksReplicateByThemselvesEveryInterval(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	_, ids := playersAcked(t, n.env.srv, n.env.WSURL("arena"), 3, func(seq int) uint64 {
		return act(t, n, actBody("bob", seq))
	})
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if s, err := n.st.SessionInfo("arena", id); err != nil || s.Acked != 1 {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond)
}

// fakePlays makes n bare connections of world arena with ack 1 this
// node's plays (no sockets: for the acker alone).
func fakePlays(s *testServer, n int) []*playConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plays = make(map[string]*playConn)
	var out []*playConn
	for i := range n {
		c := &playConn{s: s.Service, world: "arena", session: fmt.Sprintf("s%d", i)}
		c.acked.Store(1)
		s.plays[c.session] = c
		out = append(out, c)
	}
	return out
}

func clearPlays(s *testServer) {
	s.mu.Lock()
	s.plays = nil
	s.mu.Unlock()
}

func TestPlayAFailedAckBatchKeepsItsAcksForTheNextRound(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, slowAcks)
	e.Do("POST", "/v1/worlds", arenaBody)
	conns := fakePlays(e.srv, 2)
	defer clearPlays(e.srv)
	fake.Set(func(f *apitest.Fake) { f.SessErr = store.ErrOverloaded })
	e.srv.acks.round(context.Background())
	ok, failed := ackBatches(e.srv)
	require.Equal(t, [2]float64{0, 1}, [2]float64{ok, failed})
	for _, c := range conns {
		require.Equal(t, uint64(0), c.flushed.Load(), "still pending")
	}
	fake.Set(func(f *apitest.Fake) { f.SessErr = nil })
	e.srv.acks.round(context.Background())
	require.Len(t, fake.AckBatches, 2)
	require.Len(t, fake.AckBatches[1], 2, "the failed acks went again")
	for _, c := range conns {
		require.Equal(t, uint64(1), c.flushed.Load())
	}
	e.srv.acks.round(context.Background())
	require.Len(t, fake.AckBatches, 2, "replicated acks do not go again")
}

func TestPlayAConnectionThatEndsOrSaysByeFlushesItsAck(t *testing.T) {
	n := startLeaderWith(t, slowAcks)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	srv := n.env.srv
	conns, ids := playersAcked(t, srv, n.env.WSURL("arena"), 2, func(seq int) uint64 {
		return act(t, n, actBody("bob", seq))
	})
	// A drop: the connection's end replicates its ack (the interval is an
	// hour away).
	require.NoError(t, conns[0].CloseNow())
	require.Eventually(t, func() bool {
		s, err := n.st.SessionInfo("arena", ids[0])
		return err == nil && s.Acked == 1
	}, 10*time.Second, 5*time.Millisecond)
	// The flush's round took the other connection's moved ack along.
	require.Equal(t, float64(2), testutil.ToFloat64(srv.acks.acks))
	ok, _ := ackBatches(srv)
	require.Equal(t, float64(1), ok)
	// A bye: the ack is replicated before the session closes.
	seq := act(t, n, actBody("bob", 2))
	require.Equal(t, []uint64{seq}, nextEvents(t, conns[1], 1))
	wsSend(t, conns[1], map[string]any{"type": "ack", "seq": seq})
	wsSend(t, conns[1], map[string]any{"type": "bye"})
	wsClosed(t, conns[1], websocket.StatusNormalClosure, "bye")
	require.Eventually(t, func() bool {
		_, err := n.st.SessionInfo("arena", ids[1])
		return err != nil
	}, 10*time.Second, 5*time.Millisecond, "the bye closed the session")
	require.Equal(t, float64(3), testutil.ToFloat64(srv.acks.acks), "its ack was replicated first")
	ok, _ = ackBatches(srv)
	require.Equal(t, float64(2), ok)
}

func TestPlayAcksOnAFollowerGoToTheLeaderInOneRequest(t *testing.T) {
	nodes := startPlayCluster(t, 2, withSecret, slowAcks)
	l, f := nodes[0], nodes[1]
	l.env.Do("POST", "/v1/worlds", arenaBody)
	_, ids := playersAcked(t, f.env.srv, f.env.WSURL("arena"), 10, func(seq int) uint64 {
		return act(t, l, actBody("bob", seq))
	})
	fwd := func() float64 {
		return testutil.ToFloat64(l.env.srv.Metrics().Requests.WithLabelValues("POST "+edge.InternalPrefix+"/sessions:acks", "200"))
	}
	before := fwd()
	f.env.srv.acks.round(context.Background())
	// The leader counts a request once it has answered it.
	require.Eventually(t, func() bool { return fwd() >= before+1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, before+1, fwd(), "one forwarded request for all ten")
	ok, _ := ackBatches(f.env.srv)
	require.Equal(t, float64(1), ok)
	for _, id := range ids {
		s, err := l.st.SessionInfo("arena", id)
		require.NoError(t, err)
		require.Equal(t, uint64(1), s.Acked, id)
	}
}

func TestAckRoundsSplitAtTheCommandLimit(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, slowAcks)
	e.Do("POST", "/v1/worlds", arenaBody)
	fakePlays(e.srv, fsm.MaxSessionAcks+1)
	defer clearPlays(e.srv)
	e.srv.acks.round(context.Background())
	require.Len(t, fake.AckBatches, 2)
	require.Len(t, fake.AckBatches[0], fsm.MaxSessionAcks)
	require.Len(t, fake.AckBatches[1], 1)
}

func TestAckerStopsOnceAndAFlushAfterwardsReplicatesAlone(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, fastPlay)
	e.Do("POST", "/v1/worlds", arenaBody)
	a := e.srv.acks
	a.stop()
	a.stop()
	a.start() // after stop: no loop
	require.False(t, a.started)
	c := &playConn{s: e.srv.Service, world: "arena", session: "s1", ctx: context.Background()}
	fake.Set(func(f *apitest.Fake) { f.SessionMap = map[string]fsm.SessionInfo{"s1": {World: "arena", ID: "s1"}} })
	c.flushAck(true) // nothing moved: nothing sent
	require.Empty(t, fake.AckBatches)
	c.acked.Store(1)
	c.flushAck(false)
	require.Len(t, fake.AckBatches, 1)
	require.Equal(t, uint64(1), c.flushed.Load())
	c.markFlushed(0) // flushed only rises
	require.Equal(t, uint64(1), c.flushed.Load())
}

func TestAFlushGivesUpWithItsContextWhileARoundIsInFlight(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, fastPlay)
	e.Do("POST", "/v1/worlds", arenaBody)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	fake.Set(func(f *apitest.Fake) {
		f.SessHook = func() error {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release // a leader that does not answer yet
			return store.ErrOutcomeUnknown
		}
	})
	c := &playConn{s: e.srv.Service, world: "arena", session: "s1"}
	c.acked.Store(1)
	e.srv.mu.Lock()
	e.srv.plays = map[string]*playConn{"s1": c}
	e.srv.mu.Unlock()
	e.srv.acks.start()
	<-entered
	// Two flushes whose contexts end before a round carries them return;
	// the second finds the wake-up already pending.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.srv.acks.flush(ctx, c)
	e.srv.acks.flush(ctx, c)
	e.srv.mu.Lock()
	e.srv.plays = nil
	e.srv.mu.Unlock()
	close(release)
	e.srv.acks.stop()
	require.Equal(t, uint64(0), c.flushed.Load(), "no round succeeded")
	ok, _ := ackBatches(e.srv)
	require.Equal(t, float64(0), ok)
}

func TestInternalAcksEndpointServesOnlyForwardedWellFormedBatches(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake)
	e.Do("POST", "/v1/worlds", arenaBody)
	fwd := []string{edge.HeaderForwarded, "1"}
	fake.Set(func(f *apitest.Fake) { f.SessionMap = map[string]fsm.SessionInfo{"s1": {World: "arena", ID: "s1"}} })
	body := `{"acks":[{"world":"arena","id":"s1","seq":4},{"world":"arena","id":"gone","seq":4}]}`
	e.RequireError(403, edge.CodeForbidden, "POST", "/v1/sessions:acks", body)
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/sessions:acks", `{"acks":`, fwd...)
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/sessions:acks", `{"acks":[]}`, fwd...)
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/sessions:acks", `{"acks":[{"world":"arena","id":"","seq":1}]}`, fwd...)
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/sessions:acks", `{"acks":[],"extra":1}`, fwd...)
	tooMany := `{"acks":[` + strings.Repeat(`{"world":"arena","id":"s1","seq":1},`, fsm.MaxSessionAcks) + `{"world":"arena","id":"s1","seq":1}]}`
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/sessions:acks", tooMany, fwd...)
	small := newEnv(t, apitest.NewFake(), func(c *nodeConfig) { c.MaxBodyBytes, c.MaxBatchBodyBytes = 64, 64 })
	small.RequireError(413, edge.CodeTooLarge, "POST", "/v1/sessions:acks", body, fwd...)
	code, m := e.DoJSON("POST", "/v1/sessions:acks", body, fwd...)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, float64(1), m["acked"], "the unknown session is skipped")
	s, err := fake.SessionInfo("arena", "s1")
	require.NoError(t, err)
	require.Equal(t, uint64(4), s.Acked)
	fake.Set(func(f *apitest.Fake) { f.SessErr = store.ErrOverloaded })
	e.RequireError(429, edge.CodeOverloaded, "POST", "/v1/sessions:acks", body, fwd...)
	fake.LeaderFlag.Store(false)
	e.RequireError(503, edge.CodeNotLeader, "POST", "/v1/sessions:acks", body, fwd...)
}

func TestInternalAcksEndpointNeedsTheClusterSecret(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, withSecret)
	e.Do("POST", "/v1/worlds", arenaBody)
	body := `{"acks":[{"world":"arena","id":"s1","seq":1}]}`
	m := e.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/sessions:acks", body)
	require.Contains(t, m["error"], "internal endpoint")
	e.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/sessions:acks", body, edge.HeaderForwarded, "1")
	e.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/sessions:acks", body, edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret+"x")
	code, a := e.DoJSON("POST", "/v1/sessions:acks", body, edge.HeaderForwarded, "1", edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%v", a)
}

func TestSessionAcksMoveToTheLeaderWhenLeadershipMovesMidCallAndFailWithoutOne(t *testing.T) {
	leader := apitest.NewFake()
	le := newEnv(t, leader)
	le.Do("POST", "/v1/worlds", arenaBody)
	leader.Set(func(f *apitest.Fake) { f.SessionMap = map[string]fsm.SessionInfo{"s1": {World: "arena", ID: "s1"}} })
	me := apitest.NewFake()
	e := newEnv(t, me)
	me.SetLeader("n1", le.TS.Listener.Addr().String())
	me.Set(func(f *apitest.Fake) {
		f.SessHook = func() error {
			f.LeaderFlag.Store(false) // deposed while proposing
			return store.ErrNotLeader
		}
	})
	acks := []fsm.SessionAck{{World: "arena", ID: "s1", Seq: 3}}
	n, err := e.srv.SessionAcks(context.Background(), acks)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, leader.Forwarded)
	// No known leader: nothing sent.
	me.SetLeader("", "")
	_, err = e.srv.SessionAcks(context.Background(), acks)
	require.ErrorIs(t, err, store.ErrNotLeader)
}

func TestNewFailsWhenTheAckMetricsAreTaken(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_play_acks_replicated_total", Help: "taken"}))
	_, err := newFakeServer(testConfig(), reg)
	require.ErrorContains(t, err, "api ack metrics")
}

// orderBackend is a store that records the order of its session commands.
type orderBackend struct {
	*store.Store
	mu    sync.Mutex
	calls []string
}

func (b *orderBackend) record(s string) {
	b.mu.Lock()
	b.calls = append(b.calls, s)
	b.mu.Unlock()
}

func (b *orderBackend) Session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd) (fsm.SessionInfo, error) {
	if kind == fsm.CmdSessionClose {
		b.record("close " + c.ID)
	}
	return b.Store.Session(ctx, kind, c)
}

func (b *orderBackend) SessionAcks(ctx context.Context, acks []fsm.SessionAck) (int, error) {
	for _, a := range acks {
		b.record(fmt.Sprintf("ack %s %d", a.ID, a.Seq))
	}
	return b.Store.SessionAcks(ctx, acks)
}

func TestPlayByeReplicatesTheAckBeforeItClosesTheSession(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln, slowAcks)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	// A second edge over the same store, recording what it proposes.
	b := &orderBackend{Store: n.st}
	e := newEnvReg(t, b, prometheus.NewRegistry(), nil, slowAcks)
	e.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, e.WSURL("arena"))
	id := welcome(t, c, "ann")["session"].(string)
	seq := act(t, n, actBody("bob", 1))
	require.Equal(t, []uint64{seq}, nextEvents(t, c, 1))
	wsSend(t, c, map[string]any{"type": "ack", "seq": seq})
	wsSend(t, c, map[string]any{"type": "bye"})
	wsClosed(t, c, websocket.StatusNormalClosure, "bye")
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.calls) == 2
	}, 10*time.Second, 5*time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Equal(t, []string{fmt.Sprintf("ack %s %d", id, seq), "close " + id}, b.calls)
}

func TestAckRoundsBatchPerGroupTheRouterNames(t *testing.T) {
	t.Parallel()
	g1, g2 := apitest.NewFake(), apitest.NewFake()
	tr := &apitest.TableRouter{Routes: map[string]edge.Route{
		"a": {GroupID: "g1", Group: g1},
		"b": {GroupID: "g1", Group: g1},
		"c": {GroupID: "g2", Group: g2},
	}}
	s := routedServer(t, tr, slowAcks)
	s.mu.Lock()
	s.plays = make(map[string]*playConn)
	var conns []*playConn
	for i, world := range []string{"a", "c", "b", "nowhere", "c"} {
		c := &playConn{s: s.Service, world: world, session: fmt.Sprintf("s%d", i)}
		c.acked.Store(uint64(i + 1))
		s.plays[c.session] = c
		conns = append(conns, c)
	}
	s.mu.Unlock()
	defer clearPlays(s)

	s.acks.round(context.Background())
	require.Len(t, g1.AckBatches, 1, "one command for the group's two worlds")
	require.ElementsMatch(t, []fsm.SessionAck{{World: "a", ID: "s0", Seq: 1}, {World: "b", ID: "s2", Seq: 3}}, g1.AckBatches[0])
	require.Len(t, g2.AckBatches, 1)
	require.ElementsMatch(t, []fsm.SessionAck{{World: "c", ID: "s1", Seq: 2}, {World: "c", ID: "s4", Seq: 5}}, g2.AckBatches[0])
	ok, failed := ackBatches(s)
	require.Equal(t, [2]float64{2, 1}, [2]float64{ok, failed}, "the world without a route fails its own batch")
	for i, c := range conns {
		want := uint64(i + 1)
		if c.world == "nowhere" {
			want = 0 // still pending for the next round
		}
		require.Equal(t, want, c.flushed.Load(), c.world)
	}
}

// routedServer is a node over a fake whose commands go where tr says.
func routedServer(t *testing.T, tr *apitest.TableRouter, opts ...func(*nodeConfig)) *testServer {
	t.Helper()
	cfg := testConfig()
	for _, o := range opts {
		o(&cfg)
	}
	s, err := newServer(cfg, apitest.NewFake(), tr, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}
