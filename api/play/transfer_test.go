package play

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// player is one client.Play acting in a world and collecting its events.
type player struct {
	name   string
	world  string
	p      *client.Play
	acted  atomic.Int64
	mu     sync.Mutex
	events []wire.Event
	err    error // why reading ended early
}

// playEncodings: the players of startPlayers alternate between both
// subprotocols, so drains and transfers run with both.
var playEncodings = []string{client.EncodingJSON, client.EncodingMsgpack}

// startPlayers opens n plays (players p0..) through addrs, in worlds
// round-robin (alternating the subprotocols), and starts a reader per play
// that collects events until ctx ends or it has want events of its world.
func startPlayers(t *testing.T, ctx context.Context, addrs, worlds []string, n int, want func(world string) int) []*player {
	t.Helper()
	cl := client.New(addrs, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	t.Cleanup(cl.Close)
	ps := make([]*player, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32) // open them a few at a time
	for i := range ps {
		ps[i] = &player{name: fmt.Sprintf("p%d", i), world: worlds[i%len(worlds)]}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := cl.Play(ctx, ps[i].world, client.PlayOptions{Player: ps[i].name, AckInterval: 20 * time.Millisecond, Encoding: playEncodings[i%len(playEncodings)]})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", ps[i].name, err)
				return
			}
			ps[i].p = p
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, pl := range ps {
		t.Cleanup(func() { _ = pl.p.Close() })
		go func() {
			for {
				pl.mu.Lock()
				done := len(pl.events) >= want(pl.world)
				pl.mu.Unlock()
				if done {
					return
				}
				ev, err := pl.p.Next(ctx)
				pl.mu.Lock()
				if err != nil {
					pl.err = err
					pl.mu.Unlock()
					return
				}
				pl.events = append(pl.events, ev)
				pl.mu.Unlock()
			}
		}()
	}
	return ps
}

// act runs the player's actions from seq to seq+n-1 (incr e1.score by 1),
// each re-sent with the same seq until it is answered by an event.
func (pl *player) act(ctx context.Context, from, n int) error {
	for seq := from; seq < from+n; seq++ {
		for {
			_, err := pl.p.Act(ctx, client.ActionRequest{Seq: uint64(seq), Ops: []fsm.Op{client.Incr("e1", "score", 1)}})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%s action %d: %w (last: %v)", pl.name, seq, ctx.Err(), err)
			}
			time.Sleep(10 * time.Millisecond) // an unknown outcome: the same seq again
		}
		pl.acted.Add(1)
	}
	return nil
}

// checkPlayers requires of every player's events: consecutive world seqs
// from 1 (no gap, no duplicate), and each (player, client seq) of its
// world exactly once, perWorld of them in all.
func checkPlayers(t *testing.T, ctx context.Context, ps []*player, perWorld func(world string) int) {
	t.Helper()
	for _, pl := range ps {
		require.Eventually(t, func() bool {
			pl.mu.Lock()
			defer pl.mu.Unlock()
			return len(pl.events) >= perWorld(pl.world) || pl.err != nil
		}, time.Until(deadline(ctx)), 10*time.Millisecond)
		pl.mu.Lock()
		evs, err := pl.events, pl.err
		pl.mu.Unlock()
		require.NoError(t, err, pl.name)
		require.Len(t, evs, perWorld(pl.world), pl.name)
		seen := map[string]bool{}
		for i, ev := range evs {
			require.Equal(t, uint64(i+1), ev.Seq, "%s: consecutive world seqs", pl.name)
			k := fmt.Sprintf("%s/%d", ev.Player, ev.ClientSeq)
			require.False(t, seen[k], "%s: action %s applied twice", pl.name, k)
			require.Equal(t, "applied", ev.Status)
			seen[k] = true
		}
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func TestDrainMovesEveryPlayerDuringActivePlayExactlyOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []func(*nodeConfig)
	}{
		{"signed tickets", []func(*nodeConfig){fastPlay, withSecret}},
		{"expired tickets", []func(*nodeConfig){fastPlay, withSecret, func(c *nodeConfig) { c.TransferTicketTTL = time.Nanosecond }}},
		{"no secret, no tickets", []func(*nodeConfig){fastPlay}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := startPlayCluster(t, 3, tc.opts...)
			key := []string{edge.HeaderClusterKey, string(nodes[0].env.srv.Config().ClusterSecret)}
			nodes[0].env.Do("POST", "/v1/worlds", arenaBody)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const players, actions = 6, 30
			total := func(string) int { return players * actions }
			// The clients know only n2; the welcome names the others.
			ps := startPlayers(t, ctx, []string{nodes[1].env.TS.URL}, []string{"arena"}, players, total)
			var wg sync.WaitGroup
			errs := make(chan error, players)
			for _, pl := range ps {
				wg.Go(func() {
					if err := pl.act(ctx, 1, actions); err != nil {
						errs <- err
					}
				})
			}
			// Drain n2 once every player is in the middle of its actions.
			require.Eventually(t, func() bool {
				for _, pl := range ps {
					if pl.acted.Load() < actions/3 {
						return false
					}
				}
				return true
			}, 30*time.Second, time.Millisecond)
			code, m := nodes[1].env.DoJSON("POST", "/v1/node/drain", "", key...)
			require.Equal(t, 200, code, "%v", m)
			// A connection may end otherwise meanwhile (this small cluster's
			// leader can flap under -race): it is listed as failed, and its
			// client resumes anyway (checked below).
			failed, _ := m["failed"].([]any)
			require.Equal(t, players, int(m["moved"].(float64))+len(failed), "%v", m)
			require.Positive(t, m["moved"], "%v", m)
			if len(failed) > 0 {
				t.Logf("drain: %v", m)
			}
			// New connections are refused while it drains.
			m = nodes[1].env.RequireError(503, edge.CodeDraining, "GET", "/v1/worlds/arena/play", "")
			require.Contains(t, m["error"], nodes[0].env.TS.URL)
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			checkPlayers(t, ctx, ps, total)
			for _, pl := range ps {
				_, resumes := pl.p.Session()
				require.GreaterOrEqual(t, resumes, 1, pl.name)
			}
			// Every session now lives on another node, and the counter
			// saw every action once.
			for _, s := range presence(t, nodes[0]) {
				require.NotEqual(t, "n2", s["node"], "%v", s)
			}
			require.Eventually(t, func() bool {
				_, m := nodes[0].env.DoJSON("GET", "/v1/worlds/arena/entities/e1", "")
				f, _ := m["fields"].(map[string]any)
				return f["score"] == float64(players*actions)
			}, 10*time.Second, 10*time.Millisecond)
			// Undrained, it takes connections again.
			code, m = nodes[1].env.DoJSON("DELETE", "/v1/node/drain", "", key...)
			require.Equal(t, 200, code, "%v", m)
			require.Equal(t, false, m["draining"])
			late, err := client.New([]string{nodes[1].env.TS.URL}).Play(ctx, "arena", client.PlayOptions{Player: "late"})
			require.NoError(t, err)
			require.NoError(t, late.Close())
		})
	}
}

// presence returns the world's sessions as n sees them.
func presence(t *testing.T, n *node) []map[string]any {
	t.Helper()
	code, m := n.env.DoJSON("GET", "/v1/worlds/arena/sessions", "")
	require.Equal(t, 200, code)
	var out []map[string]any
	for _, s := range m["sessions"].([]any) {
		out = append(out, s.(map[string]any))
	}
	return out
}

func TestTransferTicketsAreCheckedOnResume(t *testing.T) {
	n := startLeaderWith(t, fastPlay, withSecret)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, n.env.WSURL("arena"))
	w := welcome(t, c, "ann")
	id, tok := w["session"].(string), w["resume_token"].(string)
	srv := n.env.srv
	good := wire.Ticket{World: "arena", Session: id, Epoch: 0, To: "n1", Expires: time.Now().Add(time.Minute).UnixMilli()}
	other := bareServer(nil, func(c *nodeConfig) { c.ClusterSecret = []byte(strings.Repeat("z", 32)) })
	mod := func(f func(*wire.Ticket)) string {
		t := good
		f(&t)
		return srv.SignTicket(t)
	}
	resume := func(ticket string) map[string]any {
		c := dialPlay(t, n.env.WSURL("arena"))
		wsSend(t, c, map[string]any{"type": "resume", "player": "ann", "session": id, "resume_token": tok, "ticket": ticket})
		m := wsRecv(t, c)
		if m["type"] != "welcome" {
			t.Fatalf("want welcome, got %v", m)
		}
		return m
	}
	refused := func(ticket, why string) {
		t.Helper()
		c := dialPlay(t, n.env.WSURL("arena"))
		wsSend(t, c, map[string]any{"type": "resume", "player": "ann", "session": id, "resume_token": tok, "ticket": ticket})
		wsClosed(t, c, 4401, edge.CodeTicketInvalid+": "+edge.ErrTicket.Error()+": "+why)
	}
	refused("nonsense", "bad signature")
	refused(other.SignTicket(good), "bad signature")
	refused(wire.SignTicketPayload(srv.HMACKey(ticketPurpose), []byte("{")), "undecodable")
	refused(mod(func(t *wire.Ticket) { t.Expires = time.Now().Add(-time.Second).UnixMilli() }), "expired")
	refused(mod(func(t *wire.Ticket) { t.Session = "other" }), "issued for session other")
	refused(mod(func(t *wire.Ticket) { t.To = "n9" }), "issued for node n9, this is n1")
	// None of those touched the session; a good ticket resumes it.
	require.Equal(t, float64(1), resume(srv.SignTicket(good))["epoch"])
	wsClosed(t, c, 4409, edge.CodeSessionReplaced)
	// The session is now at epoch 1: the epoch-0 ticket is stale.
	refused(srv.SignTicket(good), "the session moved on since")
	good.Epoch = 1
	require.Equal(t, float64(2), resume(srv.SignTicket(good))["epoch"])

	// A node without a secret cannot check tickets and says so.
	plain := startLeaderWith(t, fastPlay)
	plain.env.Do("POST", "/v1/worlds", arenaBody)
	pc := dialPlay(t, plain.env.WSURL("arena"))
	pw := welcome(t, pc, "bob")
	c2 := dialPlay(t, plain.env.WSURL("arena"))
	wsSend(t, c2, map[string]any{"type": "resume", "player": "bob", "session": pw["session"], "resume_token": pw["resume_token"], "ticket": "x.y"})
	wsClosed(t, c2, 4401, edge.CodeTicketInvalid)
	require.Empty(t, plain.env.srv.SignTicket(good))
}

func TestDrainRefusesWithoutAnotherNode(t *testing.T) {
	nodes := startPlayCluster(t, 2, fastPlay)
	l := startLeaderWith(t, fastPlay)
	l.env.RequireError(409, edge.CodeNoTarget, "POST", "/v1/node/drain", "")
	nodes[1].env.RequireError(404, fsm.CodeNotFound, "POST", "/v1/node/drain", `{"to":"n7"}`)
	nodes[1].env.RequireError(400, fsm.CodeMalformed, "POST", "/v1/node/drain", `{"to":`)
	// Not draining after a refusal: play is accepted.
	nodes[0].env.Do("POST", "/v1/worlds", arenaBody)
	welcome(t, dialPlay(t, nodes[1].env.WSURL("arena")), "ann")
	// Draining an idle node to a named target.
	code, m := nodes[1].env.DoJSON("POST", "/v1/node/drain", `{"to":"n1"}`)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, float64(1), m["moved"])
	code, _, _ = nodes[1].env.Do("GET", "/v1/worlds/arena/play", "")
	require.Equal(t, http.StatusServiceUnavailable, code)
}

// wsPair returns both ends of a play WebSocket: the server's and the client's.
func wsPair(t *testing.T) (server, cl *websocket.Conn) {
	t.Helper()
	got := make(chan *websocket.Conn, 1)
	done := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		got <- c
		<-done // the handler owns the connection until the test ends
	}))
	t.Cleanup(func() {
		close(done)
		ts.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.CloseNow() })
	server = <-got
	t.Cleanup(func() { _ = server.CloseNow() })
	return server, cl
}

// bareConn is a play connection over ws outside of any handler.
func bareConn(s *testServer, ws *websocket.Conn) *playConn {
	c := &playConn{s: s.Service, cfg: s.cfg, ws: ws, world: "arena", out: make(chan []byte, 4),
		ob: newOutbox(4, codecJSON), final: make(chan []byte, 1), ready: make(chan struct{}), sem: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

func TestWriteFinalWritesWhatWasQueuedThenTheTransfer(t *testing.T) {
	e := newEnv(t, apitest.NewFake())
	srvWS, cl := wsPair(t)
	c := bareConn(e.srv, srvWS)
	c.out <- []byte(`{"type":"result","seq":1}`)
	c.out <- []byte(`{"type":"events","events":[]}`)
	c.writeFinal([]byte(`{"type":"transfer","to":"http://x"}`))
	require.ErrorIs(t, c.err, edge.ErrMoved)
	for _, want := range []string{"result", "events", "transfer"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, b, err := cl.Read(ctx)
		cancel()
		require.NoError(t, err)
		require.Contains(t, string(b), `"type":"`+want+`"`)
	}

	// A connection that cannot be written to ends as a slow consumer,
	// without the transfer.
	srvWS2, _ := wsPair(t)
	c2 := bareConn(e.srv, srvWS2)
	require.NoError(t, srvWS2.CloseNow())
	c2.out <- []byte(`{"type":"result","seq":1}`)
	c2.writeFinal([]byte(`{"type":"transfer"}`))
	require.ErrorIs(t, c2.err, edge.ErrSlowConsumer)
	c3 := bareConn(e.srv, srvWS2)
	c3.writeFinal([]byte(`{"type":"transfer"}`))
	require.ErrorIs(t, c3.err, edge.ErrSlowConsumer)
}

func TestTransferGivesUpOnAConnectionThatEndsOrStalls(t *testing.T) {
	e := newEnv(t, apitest.NewFake(), func(c *nodeConfig) {
		c.RequestTimeout = time.Millisecond
		c.Play.WriteTimeout = time.Millisecond
	})
	to := fsm.NodeInfo{ID: "n2", HTTPAddr: "127.0.0.1:1"}
	// Ended before its handshake finished.
	c := bareConn(e.srv, nil)
	c.fail(errBye)
	require.False(t, c.transfer(to))
	// Nobody writes the transfer (the writer is stuck): it is cut off.
	c = bareConn(e.srv, nil)
	close(c.ready)
	c.final <- []byte("already queued")
	require.False(t, c.transfer(to))
	require.ErrorIs(t, c.err, edge.ErrSlowConsumer)
	require.False(t, c.admitAct(), "no actions once moving")
}
