package play

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// The play writers' ruler (issue 11): N play connections on real loopback
// WebSocket sockets, their writers running as in production, fed by a hub
// that the ruler drives by hand (fanout and tick), so that what it counts
// per delivered event does not depend on the machine's load: socket write
// calls (wscork.Conn), writer wakes, allocations and bytes. Its clients read
// raw frames and only count them, so that the process's CPU is mostly the
// server's.
//
// Two mixes, as gsdctl's scenarios: play (interest off, every player sees
// every critical event, no moves) and p10k (an interest grid, each player
// seeing about 75 others at 1,000 players: per tick 5 batches of one
// critical hit and 10 bulk moves, i.e. 0.1 critical actions and 1 move per
// player per second at 20 ticks/s). Between batches the ruler waits until
// every writer has written what it was given (a quiet machine: each
// critical event goes out on its own), except before the tick when
// lastBeforeTick is set (the last batch of a tick arrives just before it).

// rulerMix is one workload.
type rulerMix struct {
	name           string
	grid           bool // an interest grid (p10k); else the shared stream (play)
	batches        int  // batches per tick
	moves          int  // bulk moves per batch (grid only)
	lastBeforeTick bool // the tick follows the last batch at once
}

var rulerMixes = []rulerMix{
	{name: "play", batches: 3},
	{name: "p10k", grid: true, batches: 5, moves: 10},
	{name: "p10k-tickrace", grid: true, batches: 5, moves: 10, lastBeforeTick: true},
}

// rulerClient is a connection's client: it reads raw WebSocket frames and
// counts bytes and messages.
type rulerClient struct {
	conn  net.Conn
	bytes atomic.Uint64 // the frames read (the upgrade's response aside)
	msgs  atomic.Uint64
	// By the message's type (JSON): events, delta, enter, leave, other.
	types [5]atomic.Uint64
	done  chan struct{}
}

// read reads the upgrade's response, then frames until the socket ends.
func (rc *rulerClient) read() {
	defer close(rc.done)
	br := bufio.NewReaderSize(rc.conn, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		fin := hdr[0]&0x80 != 0
		n, size := uint64(hdr[1]&0x7f), uint64(2)
		switch n {
		case 126:
			if _, err := io.ReadFull(br, hdr[:2]); err != nil {
				return
			}
			n, size = uint64(binary.BigEndian.Uint16(hdr[:2])), size+2
		case 127:
			if _, err := io.ReadFull(br, hdr[:8]); err != nil {
				return
			}
			n, size = binary.BigEndian.Uint64(hdr[:8]), size+8
		}
		if fin && hdr[0]&0x0f != 0x8 { // not the close frame
			head, _ := br.Peek(min(int(n), 24))
			rc.types[messageType(head)].Add(1)
		}
		if _, err := br.Discard(int(n)); err != nil {
			return
		}
		if fin {
			rc.msgs.Add(1)
		}
		rc.bytes.Add(size + n)
	}
}

var rulerTypes = []string{"events", "delta", "enter", "leave"}

// messageType is the index in rulerTypes of a JSON message that starts
// with head, len(rulerTypes) for another.
func messageType(head []byte) int {
	for i, t := range rulerTypes {
		if bytes.HasPrefix(head, []byte(`{"type":"`+t+`"`)) {
			return i
		}
	}
	return len(rulerTypes)
}

// rulerConns are n play connections over loopback with their writers
// running, served by s, for players p0.. (in codec k). With
// GSD_PLAY_RULER_SPLIT=1 their clients run in a child process
// (TestPlayRulerClientProcess), so that this process's CPU is the
// server's alone; the clients' counts are then not known (nil clients).
func rulerConns(tb testing.TB, s *Service, n int, k playCodec) ([]*playConn, []*rulerClient) {
	tb.Helper()
	served := make(chan *playConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &wscork.Hijack{ResponseWriter: w, Timeout: 10 * time.Second}
		ws, err := websocket.Accept(h, r, nil)
		if err != nil {
			return
		}
		c := &playConn{s: s, cfg: s.cfg, ws: ws, cork: h.Conn, codec: k, world: "w",
			out: make(chan []byte, s.cfg.QueueSize), final: make(chan []byte, 1),
			ob: newOutbox(s.cfg.QueueSize, k), detached: make(chan struct{}, 1)}
		c.ob.sent = s.playMetrics.sent
		c.ctx, c.cancel = context.WithCancel(context.Background())
		served <- c
		<-c.ctx.Done()
		ws.CloseNow()
	}))
	conns := make([]*playConn, n)
	clients := make([]*rulerClient, n)
	var child *exec.Cmd // the client process (split)
	tb.Cleanup(func() {
		for i, c := range conns {
			if c != nil {
				c.cancel()
				c.wg.Wait()
			}
			if clients != nil && clients[i] != nil {
				clients[i].conn.Close()
				<-clients[i].done
			}
		}
		if child != nil {
			_ = child.Wait() // its connections ended: it ends
		}
		srv.Close()
	})
	addr := strings.TrimPrefix(srv.URL, "http://")
	if os.Getenv("GSD_PLAY_RULER_SPLIT") == "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPlayRulerClientProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", rulerChildEnv, addr, n))
		cmd.Stderr = os.Stderr
		require.NoError(tb, cmd.Start())
		child = cmd
		for i := range n {
			c := <-served
			c.player = fmt.Sprintf("p%d", i)
			conns[i] = c
			c.wg.Add(1)
			go c.writer()
		}
		return conns, nil
	}
	for i := range n {
		clients[i] = dialRulerClient(tb, addr)
		c := <-served
		c.player = fmt.Sprintf("p%d", i)
		conns[i] = c
		c.wg.Add(1)
		go c.writer()
	}
	return conns, clients
}

// rulerIdle waits until every writer has written all it was given and
// every client has read it.
func rulerIdle(tb testing.TB, conns []*playConn, clients []*rulerClient) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	poll := time.NewTicker(50 * time.Microsecond)
	defer poll.Stop()
	for i, c := range conns {
		for {
			c.ob.mu.Lock()
			// Lazy frames wait for a wake (the tick's at the latest).
			pending := len(c.ob.frames) > 0 && !c.ob.lazy || c.ob.due
			c.ob.mu.Unlock()
			if !pending && c.cork.Idle() {
				_, sent := c.cork.Written()
				if clients == nil || clients[i].bytes.Load() == sent {
					break // (split: the clients' reads are not known)
				}
			}
			require.NoError(tb, c.ctx.Err(), "connection %d ended", i)
			if time.Now().After(deadline) {
				_, sent := c.cork.Written()
				tb.Fatalf("connection %d: its writer did not finish within 30s (pending %v, idle %v, wrote %d bytes)", i, pending, c.cork.Idle(), sent)
			}
			<-poll.C
		}
	}
}

// rulerCounts is what the ruler counts over a run.
type rulerCounts struct {
	crit             int // critical events written in events frames (gsd_play_events_sent_total)
	moves            int // bulk moves in the world's batches
	writes, bytes    uint64
	wakes, msgs      uint64
	mallocs, allocB  uint64
	cpu              time.Duration // the process's user + system time
	ticks, conns     int
	wall             time.Duration
	writesPerConnTck float64
	types            [5]uint64 // messages by type (rulerTypes, other)
	clientsIn        string    // what the CPU figure includes besides the server
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rulerTotals sums the connections' socket writes, bytes, wakes and the
// messages their clients read.
func rulerTotals(conns []*playConn, clients []*rulerClient) (writes, bytes, wakes, msgs uint64) {
	for i, c := range conns {
		w, b := c.cork.Written()
		writes, bytes, wakes = writes+w, bytes+b, wakes+c.wakes.Load()
		if clients != nil {
			msgs += clients[i].msgs.Load()
		}
	}
	return
}

// playRuler is a running ruler: its hub, connections and the world's
// position.
type playRuler struct {
	mix     rulerMix
	h       *hub
	conns   []*playConn
	clients []*rulerClient
	seq     uint64
	first   int
	away    map[int]bool
}

func newPlayRuler(tb testing.TB, mix rulerMix, n int, k playCodec) *playRuler {
	tb.Helper()
	pm, err := newPlayMetrics(prometheus.NewRegistry())
	require.NoError(tb, err)
	s := bareServer(pm)
	s.cfg = DefaultConfig()
	r := &playRuler{mix: mix, seq: 1, away: map[int]bool{}}
	if mix.grid {
		ic := InterestConfig{Cell: gridCell, X: "x", Y: "y", Radius: 1}
		r.h = s.newHubWith("w", 0, ic)
		state := fakeEntities{}
		var ents []fsm.EntityView
		for i := range n {
			id := fmt.Sprintf("p%d", i)
			x, y := gridHome(i)
			state[id] = map[string]fsm.Value{"x": fsm.Int(x), "y": fsm.Int(y)}
			v, _ := state.lookup(id)
			ents = append(ents, v)
		}
		r.h.idx = newInterestIndex(ic, state.lookup)
		r.h.idx.seedAll(ents)
	} else {
		r.h = s.newHubWith("w", 0, InterestConfig{})
	}
	r.conns, r.clients = rulerConns(tb, s, n, k)
	for _, c := range r.conns {
		c.ob.start(0)
		ok, err := r.h.attach(c)
		require.NoError(tb, err)
		require.True(tb, ok)
	}
	// Two ticks: the members join their streams (cells or shared).
	for range 2 {
		r.h.tick()
		rulerIdle(tb, r.conns, r.clients)
	}
	return r
}

// batch is the ruler's next batch of events.
func (r *playRuler) batch(n int) []*fsm.Event {
	if r.mix.grid {
		evs := rulerGridBatch(r.seq, r.first, r.mix.moves, n, r.away)
		r.first += r.mix.moves
		return evs
	}
	ev := critEv(r.seq, "e1")
	ev.World, ev.Status = "w", fsm.StatusApplied
	return []*fsm.Event{ev}
}

// rulerGridBatch is gridBatch for n players: a critical hit on one
// player, then moves of players first.. (mod n), every tenth crossing
// into the next cell and back with the player's next move.
func rulerGridBatch(seq uint64, first, moves, n int, away map[int]bool) []*fsm.Event {
	target := fmt.Sprintf("p%d", (first*7)%n)
	evs := []*fsm.Event{{Seq: seq, Player: fmt.Sprintf("p%d", (first*13)%n), Priority: fsm.PriorityCritical,
		Changes: []fsm.Change{{Entity: target, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1), Version: seq}}}}
	for i := range moves {
		s := seq + 1 + uint64(i)
		p := (first + i) % n
		x, y := gridHome(p)
		x += int64(s % 20)
		switch {
		case away[p]:
			delete(away, p)
		case (first+i)%10 == 0:
			x += gridCell
			away[p] = true
		}
		id := fmt.Sprintf("p%d", p)
		evs = append(evs, &fsm.Event{Seq: s, Player: id, Priority: fsm.PriorityBulk,
			Changes: []fsm.Change{{Entity: id, Field: "x", Op: fsm.OpSet, Value: fsm.Int(x), Version: s},
				{Entity: id, Field: "y", Op: fsm.OpSet, Value: fsm.Int(y), Version: s}}})
	}
	for _, ev := range evs {
		ev.World, ev.Status = "w", fsm.StatusApplied
	}
	return evs
}

// run runs ticks ticks of the mix and returns what it counted. The
// batches are made and prepared (as the node's fan does, once for all
// the hubs) before the counting starts.
func (r *playRuler) run(tb testing.TB, ticks int) rulerCounts {
	tb.Helper()
	type prepared struct {
		evs  []*fsm.Event
		hevs []*hubEvent
	}
	todo := make([]prepared, 0, ticks*r.mix.batches)
	var rc rulerCounts
	for range ticks * r.mix.batches {
		evs := r.batch(len(r.conns))
		hevs, err := r.h.s.prepare(evs, true)
		require.NoError(tb, err)
		todo = append(todo, prepared{evs, hevs})
		r.seq += uint64(len(evs))
		rc.moves += len(evs) - 1
	}
	sent0 := testutil.ToFloat64(r.h.s.playMetrics.sent)
	var types0 [5]uint64
	for i := range types0 {
		for _, cl := range r.clients {
			types0[i] += cl.types[i].Load()
		}
	}
	w0, b0, k0, m0 := rulerTotals(r.conns, r.clients)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, t0 := cpuTime(), time.Now()
	for t := range ticks {
		for i := range r.mix.batches {
			p := todo[t*r.mix.batches+i]
			r.h.fanout(p.evs, p.hevs)
			if !r.mix.lastBeforeTick || i < r.mix.batches-1 {
				rulerIdle(tb, r.conns, r.clients)
			}
		}
		r.h.tick()
		rulerIdle(tb, r.conns, r.clients)
	}
	rc.cpu, rc.wall = cpuTime()-cpu0, time.Since(t0)
	runtime.ReadMemStats(&ms1)
	w1, b1, k1, m1 := rulerTotals(r.conns, r.clients)
	rc.writes, rc.bytes, rc.wakes, rc.msgs = w1-w0, b1-b0, k1-k0, m1-m0
	rc.mallocs, rc.allocB = ms1.Mallocs-ms0.Mallocs, ms1.TotalAlloc-ms0.TotalAlloc
	rc.ticks, rc.conns = ticks, len(r.conns)
	rc.clientsIn = ", its clients included"
	if r.clients == nil {
		rc.clientsIn = "; its clients in a child process"
	}
	for i := range rc.types {
		for _, cl := range r.clients {
			rc.types[i] += cl.types[i].Load()
		}
		rc.types[i] -= types0[i]
	}
	rc.crit = int(testutil.ToFloat64(r.h.s.playMetrics.sent) - sent0)
	rc.writesPerConnTck = float64(rc.writes) / float64(ticks*len(r.conns))
	for _, c := range r.conns {
		require.NoError(tb, c.ctx.Err(), "no connection ends")
	}
	return rc
}

// per divides x by the critical deliveries.
func (rc rulerCounts) per(x float64) float64 { return x / float64(max(rc.crit, 1)) }

func (rc rulerCounts) perConnTick(typ int) float64 {
	return float64(rc.types[typ]) / float64(rc.ticks*rc.conns)
}

func (rc rulerCounts) String() string {
	return fmt.Sprintf("%d critical deliveries (%d moves in the world); per critical delivery: %.3f writes, %.3f wakes, %.3f messages, %.1f allocs, %.0f B allocated, %.0f B on the wire, %.2f µs CPU (rough: this process%s); writes per connection per tick %.2f; messages per connection per tick: %.2f events, %.2f delta, %.2f enter, %.2f leave, %.2f other",
		rc.crit, rc.moves, rc.per(float64(rc.writes)), rc.per(float64(rc.wakes)), rc.per(float64(rc.msgs)),
		rc.per(float64(rc.mallocs)), rc.per(float64(rc.allocB)), rc.per(float64(rc.bytes)),
		rc.per(float64(rc.cpu.Microseconds())), rc.clientsIn, rc.writesPerConnTck,
		rc.perConnTick(0), rc.perConnTick(1), rc.perConnTick(2), rc.perConnTick(3), rc.perConnTick(4))
}

// rulerChildEnv names the ruler's client process's server and players
// (addr,n).
const rulerChildEnv = "GSD_PLAY_RULER_CHILD"

// TestPlayRulerClientProcess is the ruler's client process when the
// ruler runs split (GSD_PLAY_RULER_SPLIT=1): it connects its players to
// the ruler's server and reads until the server ends their connections.
func TestPlayRulerClientProcess(t *testing.T) {
	spec := os.Getenv(rulerChildEnv)
	if spec == "" {
		t.Skip("the writers' ruler's client process (GSD_PLAY_RULER_SPLIT=1 starts it)")
	}
	addr, ns, _ := strings.Cut(spec, ",")
	n, err := strconv.Atoi(ns)
	require.NoError(t, err)
	clients := make([]*rulerClient, n)
	for i := range clients {
		clients[i] = dialRulerClient(t, addr)
	}
	for _, rc := range clients {
		<-rc.done
		rc.conn.Close()
	}
}

// dialRulerClient connects a raw client to the ruler's server and starts
// its reader.
func dialRulerClient(t testing.TB, addr string) *rulerClient {
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	rc := &rulerClient{conn: conn, done: make(chan struct{})}
	_, err = fmt.Fprintf(conn, "GET /play HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	require.NoError(t, err)
	go rc.read()
	return rc
}

// rulerPlayers is GSD_PLAY_RULER_PLAYERS, else def.
func rulerPlayers(def int) int {
	if n, err := strconv.Atoi(os.Getenv("GSD_PLAY_RULER_PLAYERS")); err == nil && n > 0 {
		return n
	}
	return def
}

// TestPlayWritersRuler runs each mix briefly and logs its counts; every
// byte the writers wrote reaches the clients, every delivery leaves in
// some write, and a quiet machine wakes a writer no more often than it
// writes to its socket.
func TestPlayWritersRuler(t *testing.T) {
	n := rulerPlayers(60)
	for _, mix := range rulerMixes {
		t.Run(mix.name, func(t *testing.T) {
			r := newPlayRuler(t, mix, n, codecJSON)
			rc := r.run(t, 10)
			t.Logf("%s, %d players, %d ticks: %s", mix.name, n, rc.ticks, rc)
			require.Positive(t, rc.crit)
			require.Positive(t, rc.writes)
			if r.clients != nil { // (split: not known)
				require.LessOrEqual(t, rc.writes, rc.msgs, "a write carries one message or more")
			}
			require.LessOrEqual(t, rc.writes, rc.wakes, "each write follows a wake")
		})
	}
}

// BenchmarkPlayWriters: one op is one tick of a mix over
// GSD_PLAY_RULER_PLAYERS (default 300) loopback connections; the metrics
// are per critical delivery.
func BenchmarkPlayWriters(b *testing.B) {
	n := rulerPlayers(300)
	for _, mix := range rulerMixes {
		b.Run(mix.name, func(b *testing.B) {
			r := newPlayRuler(b, mix, n, codecJSON)
			b.ResetTimer()
			rc := r.run(b, b.N)
			b.StopTimer()
			b.ReportMetric(rc.per(float64(rc.writes)), "writes/delivery")
			b.ReportMetric(rc.per(float64(rc.wakes)), "wakes/delivery")
			b.ReportMetric(rc.per(float64(rc.mallocs)), "allocs/delivery")
			b.ReportMetric(rc.per(float64(rc.allocB)), "B/delivery")
			b.ReportMetric(rc.per(float64(rc.cpu.Nanoseconds()))/1e3, "cpu-µs/delivery")
			b.ReportMetric(rc.writesPerConnTck, "writes/conn/tick")
			b.Logf("%d players, %d ticks: %s", n, rc.ticks, rc)
		})
	}
}
