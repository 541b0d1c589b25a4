package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// A player over a raw WebSocket play connection (docs/PROTOCOL.md), as a
// client written from the doc sees it: every frame's coverage must follow
// on from the last (no gap, no duplicate), every action is re-sent with
// the same seq until it is answered with a result.
type wsPlayer struct {
	name, world string
	ws          *websocket.Conn
	start       uint64 // the welcome's seq

	mu      sync.Mutex
	last    uint64            // the seq the frames received cover up to
	events  []wire.Event      // every event received, in order
	at      map[uint64]int64  // unix ns each event was received at
	results map[uint64]uint64 // client seq → the event seq of its result
	errors  map[string]int    // error answers by code
	broken  error             // a frame that did not follow on
	closed  error             // why the connection ended (nil: open)
	answers chan wire.ServerMsg
	done    chan struct{} // closed when the reader ends
}

// dialPlay opens a play connection to world through node addr as player
// and returns it with its welcome.
func dialPlay(ctx context.Context, t *testing.T, addr, world, player string) (*websocket.Conn, wire.ServerMsg) {
	t.Helper()
	var ws *websocket.Conn
	var welcome wire.ServerMsg
	require.Eventually(t, func() bool {
		var err error
		ws, _, err = websocket.Dial(ctx, "ws://"+addr+"/v1/worlds/"+world+"/play", &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolJSON}})
		if err != nil {
			return false
		}
		ws.SetReadLimit(1 << 24)
		b, _ := json.Marshal(map[string]any{"type": "hello", "player": player})
		if ws.Write(ctx, websocket.MessageText, b) != nil {
			return false
		}
		_, data, err := ws.Read(ctx)
		if err == nil && json.Unmarshal(data, &welcome) == nil && welcome.Type == wire.TypeWelcome {
			return true
		}
		_ = ws.CloseNow()
		return false
	}, 60*time.Second, 50*time.Millisecond, "%s plays %s through %s", player, world, addr)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws, welcome
}

// dialPlayer opens a play connection to world through node addr as
// player, and starts reading it.
func dialPlayer(ctx context.Context, t *testing.T, addr, world, player string) *wsPlayer {
	t.Helper()
	ws, welcome := dialPlay(ctx, t, addr, world, player)
	p := &wsPlayer{name: player, world: world, ws: ws, start: welcome.Seq, last: welcome.Seq, at: map[uint64]int64{},
		results: map[uint64]uint64{}, errors: map[string]int{}, answers: make(chan wire.ServerMsg, 16), done: make(chan struct{})}
	go p.read()
	return p
}

// read records the frames until the connection ends.
func (p *wsPlayer) read() {
	defer close(p.done)
	for {
		_, data, err := p.ws.Read(context.Background())
		now := time.Now().UnixNano()
		if err != nil {
			p.mu.Lock()
			p.closed = err
			p.mu.Unlock()
			return
		}
		var m wire.ServerMsg
		if err := json.Unmarshal(data, &m); err != nil {
			p.fail(fmt.Errorf("undecodable frame %s: %v", data, err))
			continue
		}
		switch m.Type {
		case "events", "delta":
			p.mu.Lock()
			if m.From != p.last+1 || m.Seq < p.last {
				p.broken = errors.Join(p.broken, fmt.Errorf("%s frame %d..%d after %d", m.Type, m.From, m.Seq, p.last))
			}
			for i, ev := range m.Events {
				if ev.Seq != m.From+uint64(i) {
					p.broken = errors.Join(p.broken, fmt.Errorf("frame %d..%d holds seq %d at %d (an event left out)", m.From, m.Seq, ev.Seq, i))
				}
				p.events = append(p.events, ev)
				p.at[ev.Seq] = now
			}
			if m.Type == "delta" && len(m.Entities) > 0 {
				p.broken = errors.Join(p.broken, fmt.Errorf("a delta %d..%d: no bulk action was sent", m.From, m.Seq))
			}
			p.last = max(p.last, m.Seq)
			p.mu.Unlock()
		case wire.TypeResult, wire.TypeError:
			p.answers <- m
		}
	}
}

func (p *wsPlayer) fail(err error) {
	p.mu.Lock()
	p.broken = errors.Join(p.broken, err)
	p.mu.Unlock()
}

// act sends actions seq 1, 2, ... until stop closes or the connection
// ends: each is re-sent with the same seq until a result answers it, and
// acks what was received after each result.
func (p *wsPlayer) act(stop <-chan struct{}, pause time.Duration) {
	for seq := uint64(1); ; {
		select {
		case <-stop:
			return
		case <-p.done:
			return
		default:
		}
		b, _ := json.Marshal(map[string]any{"type": "action", "action": map[string]any{"seq": seq,
			"ops": []map[string]any{{"op": "incr", "entity": "e-" + p.name, "field": "n", "by": 1}}}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := p.ws.Write(ctx, websocket.MessageText, b)
		if err != nil {
			cancel()
			return
		}
		var m wire.ServerMsg
		select {
		case m = <-p.answers:
		case <-ctx.Done():
		case <-p.done:
		}
		cancel()
		switch {
		case m.Type == wire.TypeResult && m.Seq == seq && m.Event != nil:
			p.mu.Lock()
			p.results[seq] = m.Event.Seq
			last := p.last
			p.mu.Unlock()
			b, _ := json.Marshal(map[string]any{"type": "ack", "seq": last})
			_ = p.ws.Write(context.Background(), websocket.MessageText, b)
			seq++
			time.Sleep(pause)
		case m.Type == wire.TypeError:
			p.mu.Lock()
			p.errors[m.Code]++
			p.mu.Unlock()
			time.Sleep(10 * time.Millisecond) // then the same seq again
		}
	}
}

// answeredAfter counts p's actions answered with an event after seq.
func (p *wsPlayer) answeredAfter(seq uint64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.results {
		if s > seq {
			n++
		}
	}
	return n
}

// covered returns the seq p's frames cover up to.
func (p *wsPlayer) covered() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// closeStatus returns the close code p's connection ended with (-1: open).
func (p *wsPlayer) closeStatus() websocket.StatusCode {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed == nil {
		return -1
	}
	return websocket.CloseStatus(p.closed)
}

// eventFollower reads a world's NDJSON event stream from seq 1.
type eventFollower struct {
	mu   sync.Mutex
	last uint64
	err  error
}

// followStream reads world's event stream from seq 1 through node id
// until it ends.
func followStream(ctx context.Context, t *testing.T, mc *metaCluster, id, world string) *eventFollower {
	t.Helper()
	c := mc.clients[slices.Index(mc.ids, id)]
	var es *client.EventStream
	require.Eventually(t, func() bool {
		var err error
		es, err = c.Events(ctx, world, 1)
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "stream %s through %s", world, id)
	f := &eventFollower{}
	go func() {
		defer es.Close()
		for {
			ev, err := es.Next()
			f.mu.Lock()
			if err != nil {
				f.err = err
				f.mu.Unlock()
				return
			}
			if ev.Seq != f.last+1 {
				f.err = fmt.Errorf("seq %d after %d", ev.Seq, f.last)
			}
			f.last = ev.Seq
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *eventFollower) upTo() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *eventFollower) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// threeShards is a map whose shards 1 and 2 have a voter on every node
// and shard 3 only on n1 and n2.
var threeShards = []map[string]any{
	{"id": 1, "voters": []string{"n1", "n2", "n3"}},
	{"id": 2, "voters": []string{"n1", "n2", "n3"}},
	{"id": 3, "voters": []string{"n1", "n2"}},
}

// Issue 14: players connected on every node while their world moves
// between two shards that every node runs keep their connections; each
// receives every event exactly once, in seq order across the move; every
// action sent during and after the move applies exactly once (answered
// with its result, re-sent with the same seq otherwise), and none is
// answered world_moved. A node that runs no replica of the new home
// closes its players' connections with 4421 world_moved, as before, and
// the others go on.
func TestRunThreeNodesPlayersStayConnectedWhileTheirWorldMoves(t *testing.T) {
	t.Parallel()
	mc := startMetaClusterOf(t, nil, threeShards, map[string]uint64{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	placeAndCreate(ctx, t, mc.clients[2], mc.clients[0], "mv", 1)
	placeAndCreate(ctx, t, mc.clients[2], mc.clients[0], "mv3", 1)

	var players []*wsPlayer
	for i, id := range mc.ids {
		players = append(players, dialPlayer(ctx, t, mc.httpAddrs[id], "mv", fmt.Sprintf("p%d", i+1)))
	}
	// An NDJSON event stream on n3 follows the move too.
	stream := followStream(ctx, t, mc, "n3", "mv")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range players {
		wg.Go(func() { p.act(stop, 2*time.Millisecond) })
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	require.Eventually(t, func() bool {
		for _, p := range players {
			if p.answeredAfter(0) < 10 {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "actions before the move")

	var moved wire.WorldMoved
	require.Eventually(t, func() bool {
		var err error
		moved, err = mc.clients[2].MoveWorld(ctx, "mv", 2)
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "move mv to shard 2")
	require.Equal(t, uint64(2), moved.To)
	require.Eventually(t, func() bool {
		for _, p := range players {
			if p.answeredAfter(moved.Seq) < 20 {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "actions after the move, on every connection")
	close(stop)
	wg.Wait()
	// Every answered action's event, and whatever a stream already showed:
	// a stream may still be behind the last answer when the actors stop.
	final := players[0].covered()
	for _, p := range players {
		p.mu.Lock()
		for _, seq := range p.results {
			final = max(final, seq)
		}
		p.mu.Unlock()
	}
	for _, p := range players {
		require.Eventually(t, func() bool { return p.covered() >= final }, 10*time.Second, 5*time.Millisecond)
	}

	for _, p := range players {
		p.mu.Lock()
		require.NoError(t, p.broken, "%s", p.name)
		require.NoError(t, p.closed, "%s's connection stays open", p.name)
		require.Zero(t, p.errors[fsm.CodeWorldMoved], "%s: no action answered world_moved", p.name)
		// Every event once, in seq order, from the welcome on.
		for i, ev := range p.events {
			require.Equal(t, p.start+uint64(i)+1, ev.Seq, "%s: event %d", p.name, i)
		}
		p.mu.Unlock()
	}
	// Every answered action is in every player's stream exactly once, at
	// the seq its result named; nothing else is.
	for _, p := range players {
		p.mu.Lock()
		seen := map[string]uint64{}
		for _, ev := range p.events {
			key := fmt.Sprint(ev.Player, "/", ev.ClientSeq)
			_, dup := seen[key]
			require.False(t, dup, "%s received %s twice", p.name, key)
			seen[key] = ev.Seq
		}
		p.mu.Unlock()
		for _, q := range players {
			q.mu.Lock()
			for cseq, seq := range q.results {
				if seq > p.start {
					require.Equal(t, seq, seen[fmt.Sprint(q.name, "/", cseq)], "%s's action %d in %s's stream", q.name, cseq, p.name)
				}
			}
			q.mu.Unlock()
		}
	}
	require.Greater(t, final, moved.Seq, "events after the fence reached the players")
	require.Eventually(t, func() bool { return stream.upTo() >= final }, 10*time.Second, 5*time.Millisecond, "the event stream on n3 goes on at the new home")
	require.NoError(t, stream.failed(), "every event once, in order (the client checks gaps)")

	// mv3 moves to shard 3, which n3 does not run: n3's player is closed
	// with 4421, n1's goes on.
	q1 := dialPlayer(ctx, t, mc.httpAddrs["n1"], "mv3", "q1")
	q3 := dialPlayer(ctx, t, mc.httpAddrs["n3"], "mv3", "q3")
	ended := followStream(ctx, t, mc, "n3", "mv3")
	require.Eventually(t, func() bool {
		_, err := mc.clients[0].MoveWorld(ctx, "mv3", 3)
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "move mv3 to shard 3")
	require.Eventually(t, func() bool { return q3.closeStatus() == 4421 }, 30*time.Second, 10*time.Millisecond, "n3 closes with world_moved")
	require.Eventually(t, func() bool { return client.Code(ended.failed()) == fsm.CodeWorldMoved }, 30*time.Second, 10*time.Millisecond,
		"n3's event stream ends with world_moved")
	stop3 := make(chan struct{})
	go q1.act(stop3, time.Millisecond)
	require.Eventually(t, func() bool { return q1.answeredAfter(0) >= 3 }, 30*time.Second, 10*time.Millisecond, "q1 plays on at the new home")
	close(stop3)
	require.Equal(t, websocket.StatusCode(-1), q1.closeStatus())
	q1.mu.Lock()
	require.NoError(t, q1.broken)
	q1.mu.Unlock()
}

// frameAt is when a watcher received a frame covering seqs from..seq.
type frameAt struct {
	from, seq uint64
	at        int64
}

// watchFrames reads ws's frames until it ends, recording when each events
// frame arrived (decoding only its coverage), and closes done.
func watchFrames(ws *websocket.Conn, frames *[]frameAt, done chan<- error) {
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			done <- err
			return
		}
		var m struct {
			Type      string `json:"type"`
			From, Seq uint64
		}
		if json.Unmarshal(data, &m) == nil && m.Type == "events" {
			*frames = append(*frames, frameAt{m.From, m.Seq, time.Now().UnixNano()})
		}
	}
}

// receivedAt is when frames brought seq (0: never).
func receivedAt(frames []frameAt, seq uint64) int64 {
	for _, f := range frames {
		if f.from <= seq && seq <= f.seq {
			return f.at
		}
	}
	return 0
}

// TestMoveFreezeAsPlayersSeeIt (opt-in, GSD_MOVE_BENCH=1) measures the
// freeze of a world's move as its connected players see it: 3 in-process
// nodes, the world's old and new shards with a voter on each, players
// (GSD_MOVE_PLAYERS, default 1,000) connected over WebSocket spread over
// the nodes, 8 of them acting every tick (50 ms). For each connection the
// freeze is the time from receiving the fence's event N to receiving
// N+1, the new home's first; the leader times of N and N+1 are the
// freeze TestMoveFreezeWithManyPlayers (shard) reports.
//
//	GSD_MOVE_BENCH=1 go test -run TestMoveFreezeAsPlayersSeeIt -v ./cmd/gsd/
func TestMoveFreezeAsPlayersSeeIt(t *testing.T) {
	if os.Getenv("GSD_MOVE_BENCH") == "" {
		t.Skip("opt-in: GSD_MOVE_BENCH=1")
	}
	players := 1000
	if n, err := strconv.Atoi(os.Getenv("GSD_MOVE_PLAYERS")); err == nil && n > 0 {
		players = n
	}
	const writers = 8
	mc := startMetaClusterOf(t, nil, threeShards, map[string]uint64{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	placeAndCreate(ctx, t, mc.clients[2], mc.clients[0], "mv", 1)

	type watcher struct {
		ws     *websocket.Conn
		frames []frameAt
		done   chan error
	}
	watchers := make([]*watcher, players)
	var dials sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range players {
		dials.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			// A reader that decodes only a frame's coverage: at 1,000
			// connections the test's own decoding competes with the nodes.
			ws, _ := dialPlay(ctx, t, mc.httpAddrs[mc.ids[i%len(mc.ids)]], "mv", fmt.Sprintf("v%d", i))
			w := &watcher{ws: ws, done: make(chan error, 1)}
			watchers[i] = w
			go watchFrames(ws, &w.frames, w.done)
		})
	}
	dials.Wait()
	var acting []*wsPlayer
	for i := range writers {
		acting = append(acting, dialPlayer(ctx, t, mc.httpAddrs[mc.ids[i%len(mc.ids)]], "mv", fmt.Sprintf("p%d", i)))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range acting {
		wg.Go(func() { p.act(stop, 50*time.Millisecond) })
	}
	time.Sleep(2 * time.Second) // a steady stream before the move
	start := time.Now()
	var moved wire.WorldMoved
	require.Eventually(t, func() bool {
		var err error
		moved, err = mc.clients[2].MoveWorld(ctx, "mv", 2)
		return err == nil
	}, 60*time.Second, 20*time.Millisecond, "move mv to shard 2")
	took := time.Since(start)
	require.Eventually(t, func() bool { return acting[0].answeredAfter(moved.Seq) >= 20 }, 60*time.Second, 10*time.Millisecond, "actions after the move")
	close(stop)
	wg.Wait()
	time.Sleep(time.Second) // the last frames reach every watcher

	var freezes []time.Duration
	closed, missed := 0, 0
	for _, w := range watchers {
		// The frames are the watcher goroutine's until it ends.
		select {
		case <-w.done:
			closed++ // ended during the move
		default:
			_ = w.ws.CloseNow()
			<-w.done
		}
		last, first := receivedAt(w.frames, moved.Seq), receivedAt(w.frames, moved.Seq+1)
		if last == 0 || first == 0 {
			missed++
			continue
		}
		freezes = append(freezes, time.Duration(first-last))
	}
	slices.Sort(freezes)
	require.NotEmpty(t, freezes)
	q := func(p float64) time.Duration { return freezes[min(len(freezes)-1, int(p*float64(len(freezes))))] }
	p0 := acting[0]
	p0.mu.Lock()
	var lastT, firstT int64
	for _, ev := range p0.events {
		switch ev.Seq {
		case moved.Seq:
			lastT = ev.Time
		case moved.Seq + 1:
			firstT = ev.Time
		}
	}
	p0.mu.Unlock()
	t.Logf("%d players (%d acting every 50 ms) on 3 nodes; move %s (fence at seq %d); leader time of seq %d to %d: %s",
		players+writers, writers, took.Round(time.Millisecond), moved.Seq, moved.Seq, moved.Seq+1, time.Duration(firstT-lastT).Round(time.Millisecond))
	t.Logf("freeze as received (event N to N+1, per connection): median %s, P90 %s, P99 %s, max %s; %d connections closed during the move, %d missed N or N+1",
		q(0.5).Round(time.Millisecond), q(0.9).Round(time.Millisecond), q(0.99).Round(time.Millisecond), freezes[len(freezes)-1].Round(time.Millisecond), closed, missed)
}
