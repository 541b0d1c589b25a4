package play

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// worldHub returns the running hub of world on n's server.
func (n *node) worldHub(t *testing.T, world string) *hub {
	t.Helper()
	var h *hub
	require.Eventually(t, func() bool {
		n.env.srv.hubMu.Lock()
		defer n.env.srv.hubMu.Unlock()
		h = n.env.srv.hubs[world]
		return h != nil
	}, 10*time.Second, 5*time.Millisecond)
	return h
}

// attached reports how many connections the hub feeds itself.
func (h *hub) attached() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.members {
		if m != memberDetached {
			n++
		}
	}
	return n
}

// recvType reads messages until one of type typ.
func recvType(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		if m := wsRecv(t, c); m["type"] == typ {
			return m
		}
	}
}

func act(t *testing.T, n *node, body string) uint64 {
	t.Helper()
	code, _, b := n.env.Do("POST", "/v1/worlds/arena/actions", body)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var ev struct{ Seq uint64 }
	require.NoError(t, json.Unmarshal(b, &ev))
	return ev.Seq
}

func moveBody(player string, seq int, entity string, x, y int) string {
	return fmt.Sprintf(`{"player":%q,"seq":%d,"priority":"bulk","ops":[{"op":"set","entity":%q,"field":"x","value":%d},{"op":"set","entity":%q,"field":"y","value":%d}]}`,
		player, seq, entity, x, entity, y)
}

func hitBody(player string, seq int, entity string) string {
	return fmt.Sprintf(`{"player":%q,"seq":%d,"ops":[{"op":"incr","entity":%q,"field":"hp","by":-1}]}`, player, seq, entity)
}

func TestPlayCriticalEventsGoAheadOfBulkWhichCoalescesLatestWins(t *testing.T) {
	n := startLeaderWith(t, fastPlay, func(c *nodeConfig) { c.Play.TickInterval = time.Hour }) // the test ticks
	n.env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann")
	h := n.worldHub(t, "arena")
	require.Eventually(t, func() bool { return h.attached() == 1 }, 10*time.Second, 5*time.Millisecond)

	// Fifty moves of bob (bulk), then a hit (critical).
	var actions []string
	for i := 1; i <= 50; i++ {
		actions = append(actions, moveBody("bob", i, "bob", i, 2*i))
	}
	for _, a := range actions {
		act(t, n, a)
	}
	hit := act(t, n, hitBody("bob", 51, "ann"))
	require.Equal(t, uint64(51), hit)

	// The hit comes at once; its frame covers nothing of the pending moves.
	m := recvType(t, c, "events")
	require.Equal(t, []uint64{51}, eventSeqs(m))
	require.Equal(t, float64(1), m["from"])
	require.Equal(t, float64(0), m["seq"], "an ack of this frame must not skip the moves")

	// The tick: one delta, bob's latest position.
	h.tick()
	m = recvType(t, c, "delta")
	require.Equal(t, float64(1), m["from"])
	require.Equal(t, float64(51), m["seq"])
	require.Equal(t, map[string]any{"bob": map[string]any{"fields": map[string]any{
		"x": map[string]any{"value": float64(50), "version": float64(50)},
		"y": map[string]any{"value": float64(100), "version": float64(50)},
	}}}, m["entities"])

	// Acks clamp to what the frames covered.
	wsSend(t, c, map[string]any{"type": "ack", "seq": 99})
	require.Eventually(t, func() bool {
		ss, err := n.st.Sessions("arena")
		return err == nil && len(ss) == 1 && ss[0].Acked == 51
	}, 10*time.Second, 5*time.Millisecond)
}

func TestPlayBrieflySlowReaderIsDetachedCatchesUpAloneAndMissesNothing(t *testing.T) {
	n := startSmallBufferLeader(t, func(c *nodeConfig) {
		c.Play.QueueSize = 2
		c.Play.SlowTimeout = time.Minute
		// Its catch-up frame (about 300 KB) crawls through the reader's
		// 4 KiB window for about 10 s: it must not be cut off for that.
		c.Play.WriteTimeout = time.Minute
	})
	url := n.env.WSURL("arena")
	lag := dialSlowReader(t, url, "lag")
	// The welcome can come before the connection's pusher has joined the
	// hub: until it is attached it reads alone, and a full queue then
	// makes it wait rather than be detached.
	h := n.worldHub(t, "arena")
	require.Eventually(t, func() bool { return h.attached() == 1 }, 10*time.Second, 5*time.Millisecond)

	// Big events, which the lagging player does not read for a while.
	const total = 120
	big := strings.Repeat("x", 3000)
	for i := 1; i <= total; i++ {
		act(t, n, fmt.Sprintf(`{"player":"bob","seq":%d,"ops":[{"op":"set","entity":"e%d","field":"blob","value":%q}]}`, i, i, big))
	}
	require.Eventually(t, func() bool {
		return regexp.MustCompile(`(?m)^gsd_play_detaches_total [1-9]`).MatchString(n.metrics(t))
	},
		10*time.Second, 5*time.Millisecond, "the hub left the full connection behind")
	// It reads now: everything, in order, and it attaches again.
	require.Equal(t, seqRange(1, total), nextEvents(t, lag, total))
	require.Eventually(t, func() bool { return h.attached() == 1 }, 10*time.Second, 5*time.Millisecond)
	act(t, n, actBody("bob", total+1))
	require.Equal(t, []uint64{total + 1}, nextEvents(t, lag, 1))
}

func TestPlayInterestSendsNearTeamGlobalAndOwnEventsOnly(t *testing.T) {
	n := startLeaderWith(t, fastPlay, func(c *nodeConfig) {
		c.Play.Interest = InterestConfig{Cell: 100, X: "x", Y: "y", Radius: 1, Team: "team"}
	})
	n.env.Do("POST", "/v1/worlds", arenaBody)
	place := func(seq int, entity string, x, y int, team string) {
		body := fmt.Sprintf(`{"player":"gm","seq":%d,"ops":[{"op":"set","entity":%q,"field":"x","value":%d},{"op":"set","entity":%q,"field":"y","value":%d}`,
			seq, entity, x, entity, y)
		if team != "" {
			body += fmt.Sprintf(`,{"op":"set","entity":%q,"field":"team","value":%q}`, entity, team)
		}
		act(t, n, body+"]}")
	}
	place(1, "ann", 50, 50, "red")
	place(2, "near", 150, 150, "")
	place(3, "far", 950, 950, "")
	place(4, "mate", 900, 900, "red")

	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann")
	// Placed after ann joined: the hub learns these from the events.
	place(5, "far2", 990, 10, "blue")
	place(6, "near2", 10, 190, "")
	// ann's cell is (0,0), radius 1.
	seqs := map[string]uint64{}
	for i, e := range []string{"far", "near", "mate", "far2", "near2", "board", "ann"} {
		seqs[e] = act(t, n, hitBody("bob", i+1, e))
	}
	var got []uint64
	for len(got) == 0 || got[len(got)-1] != seqs["ann"] {
		got = append(got, nextEventsAny(t, c)...)
	}
	require.Equal(t, []uint64{6, seqs["near"], seqs["mate"], seqs["near2"], seqs["board"], seqs["ann"]}, got,
		"near2's placement (6) and the hits on near, mate (team), near2, board (global) and ann; not far, far2 or far2's placement")
}

// nextEventsAny reads the next events frame's seqs.
func nextEventsAny(t *testing.T, c *websocket.Conn) []uint64 {
	t.Helper()
	return eventSeqs(recvType(t, c, "events"))
}

func TestPlayHubStartsWithTheFirstConnectionAndStopsWithTheLast(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	n.env.Do("POST", "/v1/worlds", strings.Replace(arenaBody, "arena", "other", 1))
	require.Equal(t, 0, n.env.srv.hubCount())
	a := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, a, "ann")
	b := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, b, "bob")
	o := dialPlay(t, n.env.WSURL("other"))
	welcome(t, o, "oli")
	require.Eventually(t, func() bool { return n.env.srv.hubCount() == 2 }, 10*time.Second, 5*time.Millisecond, "one hub per world")
	h := n.worldHub(t, "arena")
	require.Eventually(t, func() bool { return h.attached() == 2 }, 10*time.Second, 5*time.Millisecond)

	// Both get the event from the one hub.
	seq := act(t, n, actBody("cy", 1))
	require.Equal(t, []uint64{seq}, nextEvents(t, a, 1))
	require.Equal(t, []uint64{seq}, nextEvents(t, b, 1))

	wsSend(t, a, map[string]any{"type": "bye"})
	wsClosed(t, a, websocket.StatusNormalClosure, "bye")
	require.Eventually(t, func() bool { return h.attached() == 1 }, 10*time.Second, 5*time.Millisecond)
	_ = b.CloseNow()
	_ = o.CloseNow()
	require.Eventually(t, func() bool { return n.env.srv.hubCount() == 0 }, 10*time.Second, 5*time.Millisecond,
		"the last connection stops the hub (goleak checks its goroutines are gone)")
	h.wg.Wait()

	// A new connection starts a new hub.
	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann2")
	require.NotSame(t, h, n.worldHub(t, "arena"))
	seq = act(t, n, actBody("cy", 2))
	require.Equal(t, []uint64{seq}, nextEvents(t, c, 1))
}

func TestPlayReaderThatStopsReadingControlMessagesIsCutOffWith4429(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	stalling := &apitest.StallingListener{Listener: ln}
	n := startNodeOn(t, "n1", true, stalling, func(c *nodeConfig) {
		c.Play.QueueSize = 1
		c.Play.SlowTimeout = 300 * time.Millisecond
		c.Play.WriteTimeout = time.Minute
	})
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "pinger")
	// From now on the server's writes to the client make no progress (a
	// kernel buffer that never drains): the pongs back up in the queue.
	stalling.StallAll()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ping := []byte(`{"type":"ping","t":1}`)
	closes := n.env.srv.playMetrics.closes.WithLabelValues("4429")
	for i := 0; testutil.ToFloat64(closes) == 0; i++ {
		require.NoError(t, c.Write(ctx, websocket.MessageText, ping), "ping %d: the server must read until it cuts the connection off", i)
		if i >= 2 { // one pong is being written, one fills the queue, one waits
			time.Sleep(10 * time.Millisecond)
		}
	}
	require.Equal(t, float64(1), testutil.ToFloat64(closes))
	stalling.Release() // the close frame goes out; the test ends at once
}

// A reader that stops reading while bulk moves keep coming gets them
// coalesced: few deltas, the latest value, and every critical event.
func TestPlaySlowReaderGetsBulkCoalescedLatestWins(t *testing.T) {
	n := startSmallBufferLeader(t, func(c *nodeConfig) {
		c.Play.TickInterval = 5 * time.Millisecond
		c.Play.SlowTimeout = time.Minute
	})
	slow := dialSlowReader(t, n.env.WSURL("arena"), "slow")

	// Big critical events fill the socket; then 100 moves of one entity.
	big := strings.Repeat("x", 3000)
	var crit []uint64
	for i := 1; i <= 40; i++ {
		crit = append(crit, act(t, n, fmt.Sprintf(`{"player":"bob","seq":%d,"ops":[{"op":"set","entity":"e%d","field":"blob","value":%q}]}`, i, i, big)))
	}
	var last uint64
	for i := 1; i <= 100; i++ {
		last = act(t, n, moveBody("bob", 40+i, "mover", i, i))
	}
	// Now it reads: every critical event, and the moves coalesced.
	var gotCrit []uint64
	deltas, lastX := 0, float64(0)
	for covered := uint64(0); covered < last; {
		m := wsRecv(t, slow)
		switch m["type"] {
		case "events":
			gotCrit = append(gotCrit, eventSeqs(m)...)
		case "delta":
			if e, ok := m["entities"].(map[string]any)["mover"]; ok {
				deltas++
				x := e.(map[string]any)["fields"].(map[string]any)["x"].(map[string]any)
				require.Greater(t, x["value"].(float64), lastX, "values only move forward")
				lastX = x["value"].(float64)
			}
		}
		covered = max(covered, uint64(m["seq"].(float64)))
	}
	require.Equal(t, crit, gotCrit)
	require.Equal(t, float64(100), lastX, "the latest value wins")
	require.Less(t, deltas, 100, "coalesced while the reader did not read")
	t.Logf("100 moves arrived in %d deltas", deltas)
}

func TestPlayAFailedHubIsReplacedByTheNextConnection(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", arenaBody)
	dead := &hub{world: "arena", err: fmt.Errorf("archive gap"), members: map[*playConn]member{}}
	n.env.srv.hubMu.Lock()
	n.env.srv.hubs = map[string]*hub{"arena": dead}
	n.env.srv.hubMu.Unlock()
	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann")
	// The connection's pusher joins (and so replaces) the hub while the
	// welcome is on its way: wait for it rather than race it.
	require.Eventually(t, func() bool { return n.worldHub(t, "arena") != dead }, 10*time.Second, 5*time.Millisecond)
	seq := act(t, n, actBody("bob", 1))
	require.Equal(t, []uint64{seq}, nextEvents(t, c, 1))
}

// handled returns the seq up to which the hub has fanned the world's
// events out.
func (h *hub) handled() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next - 1
}

// inShared reports how many connections the hub's shared stream feeds.
func (h *hub) inShared() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.members {
		if m == memberShared {
			n++
		}
	}
	return n
}

func TestPlayConnectionsWithoutInterestShareOneStreamAndGetTheSameFrames(t *testing.T) {
	n := startLeaderWith(t, fastPlay, func(c *nodeConfig) { c.Play.TickInterval = time.Hour }) // the test ticks
	n.env.Do("POST", "/v1/worlds", arenaBody)
	var conns []*websocket.Conn
	for _, p := range []string{"ann", "bea", "cid"} {
		c := dialPlay(t, n.env.WSURL("arena"))
		welcome(t, c, p)
		conns = append(conns, c)
	}
	h := n.worldHub(t, "arena")
	require.Eventually(t, func() bool { return h.attached() == 3 }, 10*time.Second, 5*time.Millisecond)
	h.tick() // they join the shared stream
	require.Equal(t, 3, h.inShared())

	for i := 1; i <= 20; i++ {
		act(t, n, moveBody("bob", i, fmt.Sprintf("u%d", i%4), i, 2*i))
	}
	require.Equal(t, uint64(21), act(t, n, hitBody("bob", 21, "ann")))
	// The answer comes once the hit is applied; the hub reads it from the
	// world's feed in its own time. Tick only after it has fanned out all
	// 21 events: a tick before would send a delta of part of the moves
	// ahead of the hit's frame, and none after it.
	require.Eventually(t, func() bool { return h.handled() == 21 }, 10*time.Second, 5*time.Millisecond)
	h.tick()
	var want []map[string]any
	for i, c := range conns {
		got := []map[string]any{recvType(t, c, "events"), recvType(t, c, "delta")}
		if i == 0 {
			want = got
			require.Equal(t, []uint64{21}, eventSeqs(got[0]))
			require.Equal(t, []any{float64(1), float64(0)}, []any{got[0]["from"], got[0]["seq"]})
			require.Equal(t, []any{float64(1), float64(21)}, []any{got[1]["from"], got[1]["seq"]})
			require.Equal(t, map[string]any{"value": float64(20), "version": float64(20)},
				got[1]["entities"].(map[string]any)["u0"].(map[string]any)["fields"].(map[string]any)["x"])
			require.Len(t, got[1]["entities"], 4)
		}
		require.Equal(t, want, got)
	}
	require.Equal(t, 3, h.inShared())
}

// A hub too slow for its fan (its queue of batches full) is let go, reads
// on from its own subscription and attaches again; its player misses no
// event and sees none twice. A fan that runs ahead of the hub (it kept
// reading for another member) is caught up with from the subscription and
// its batches are offered from the hub's position on.
func TestHubLetGoByItsFanCatchesUpAloneAndAttachesAgain(t *testing.T) {
	t.Parallel()
	n := startLeaderWith(t, fastPlay)
	srv := n.env.srv
	srv.fans.Close()
	var err error
	srv.fans, err = srv.newFans(1)
	require.NoError(t, err)
	code, _ := n.env.DoJSON("POST", "/v1/worlds", arenaBody)
	require.Equal(t, 201, code)
	key := fanout.Key{World: "arena"}
	members := func() int {
		_, m := srv.fans.Members("arena")
		return m
	}

	c := dialPlay(t, n.env.WSURL("arena"))
	welcome(t, c, "ann")
	h := n.worldHub(t, "arena")
	require.Eventually(t, func() bool { return members() == 1 }, 10*time.Second, time.Millisecond)

	// blocked holds the hub inside its fan-out while events arrive one
	// at a time from seq first on, until its queue of one batch has
	// overflowed and the fan let it go (the fan has want members): how
	// many it takes depends on how the fan's reads fall into windows. It
	// returns the last seq, and releases the hub also when the test fails.
	blocked := func(first, want int) int {
		h.mu.Lock()
		defer h.mu.Unlock()
		seq := first - 1
		for deadline := time.Now().Add(time.Minute); members() != want; {
			require.True(t, time.Now().Before(deadline), "the fan never let the hub go (acted %d..%d)", first, seq)
			seq++
			act(t, n, actBody("bob", seq))
		}
		return seq
	}
	last := blocked(1, 0)
	require.Equal(t, seqRange(1, uint64(last)), nextEvents(t, c, last))
	require.Eventually(t, func() bool { return members() == 1 }, 10*time.Second, time.Millisecond)

	// Another member keeps the fan alive while the hub is let go again;
	// when the hub comes back the fan is ahead of it.
	other, _ := srv.fans.Attach(key, uint64(last+1))
	defer srv.fans.Detach(other)
	go func() {
		for range other.Chunks() {
		}
	}()
	next := last + 1
	last = blocked(next, 1)
	require.Equal(t, seqRange(uint64(next), uint64(last)), nextEvents(t, c, last-next+1))
	require.Eventually(t, func() bool { return members() == 2 }, 10*time.Second, time.Millisecond)
	act(t, n, actBody("bob", last+1))
	require.Equal(t, []uint64{uint64(last + 1)}, nextEvents(t, c, 1))
}

// follow offers each event once, in order, whatever the batches: one that
// overlaps what the hub offered is offered from the hub's position on, one
// that starts after it is preceded by the events in between, read from the
// hub's own subscription, and one the hub is past is skipped.
func TestHubFollowOffersEachSeqOnce(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	code, _ := n.env.DoJSON("POST", "/v1/worlds", arenaBody)
	require.Equal(t, 201, code)
	for i := 1; i <= 6; i++ {
		require.EqualValues(t, i, act(t, n, actBody("p1", i)))
	}
	srv := n.env.srv
	batch := func(from, to uint64) *playBatch {
		var evs []*fsm.Event
		for s := from; s <= to; s++ {
			ev, ok := n.st.Event("arena", s)
			require.True(t, ok)
			evs = append(evs, ev)
		}
		hevs, err := srv.prepare(evs, true)
		require.NoError(t, err)
		return &playBatch{evs: evs, hevs: hevs}
	}
	h := srv.newHub("arena", 0)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	defer h.cancel()
	ch := make(chan *playBatch, 4)
	ch <- batch(1, 2)
	ch <- batch(1, 3) // 1 and 2 offered already
	ch <- batch(5, 5) // 4 comes from the subscription first (with 5 and 6)
	ch <- batch(2, 4) // passed
	close(ch)
	var sub *store.Subscription
	require.True(t, h.follow(ch, &sub))
	require.EqualValues(t, 7, h.position(), "the hub offered up to 6")
	require.EqualValues(t, 6, h.shared.position())

	// A hub that stops while following returns false: while it waits for
	// a batch, or while it reads up to one that ran ahead of the feed.
	ahead := make(chan *playBatch, 1)
	ahead <- &playBatch{evs: []*fsm.Event{{World: "arena", Seq: 10}}, hevs: []*hubEvent{{}}}
	stop := time.AfterFunc(50*time.Millisecond, h.cancel)
	defer stop.Stop()
	require.False(t, h.follow(ahead, &sub))
	require.False(t, h.follow(make(chan *playBatch), &sub))
}
