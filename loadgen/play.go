package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// MaxPlayPlayers bounds the play scenario's players: each one is a
// WebSocket connection (and a file descriptor on each side).
const MaxPlayPlayers = 10000

// playInflight bounds one player's actions awaiting their result (the
// server's default MaxInflight per connection).
const playInflight = 64

// playBuffer is each player's event buffer (client.PlayOptions.Buffer);
// bigPlayBuffer with many players, whose buffers would add up.
const (
	playBuffer    = 256
	bigPlayBuffer = 32
)

// PlayParams are what the play scenario adds to LoadParams.
type PlayParams struct {
	// BulkRate adds this many bulk moves per second (each player's own
	// position, round-robin over the players) in a second measured phase,
	// to compare critical-event propagation with bulk traffic and without.
	BulkRate float64
	// Encoding is the players' play encoding (client.PlayOptions.Encoding:
	// "json", the default, or "msgpack").
	Encoding string
	// BulkOver is how the bulk moves travel: BulkOverWS (the default:
	// play actions on the WebSocket) or BulkOverUDP (client.UDPInput on
	// each connection's UDP input lane; every node must serve one, gsd
	// --udp-addr). With UDP the result is scenario "play-udp" and counts
	// the packets sent and what the nodes did with them.
	BulkOver string
	// AuthKey, when set, is the HS256 secret the nodes verify players'
	// tokens with (gsd --jwt-hs256-key-file): each player's connections
	// carry a token the load generator mints for it (playauth.go), so the
	// run includes the cost of auth. Nil: no tokens (auth off).
	AuthKey []byte
}

// playConnectParallel bounds the hellos and byes in flight.
const playConnectParallel = 64

// playPlayer is one simulated player's play connection.
type playPlayer struct {
	play     *client.Play
	sem      chan struct{}    // actions in flight
	watch    string           // the player whose events this one measures (player A)
	received atomic.Int64     // events received on the stream
	deltas   atomic.Int64     // coalesced bulk deltas received
	udp      *client.UDPInput // bulk moves over UDP (playudp.go)
}

// PlayBattle runs a battle like Battle, but each of Players players has
// its own WebSocket play connection (client.Play), spread over the nodes,
// and sends its actions over it, open-loop at Rate actions/s in total
// (Tick, Items, Seed and RequestTimeout as in Battle; Batch, Conns and
// Observers do not apply). action_commit is an action's scheduled send →
// its result on the connection; propagation is player A's scheduled send
// → the event received on player B's play stream (each player watches one
// other player's critical events, so every event is measured once); fanout
// is leader time → received, for the same watched events. With BulkRate
// a second phase adds that many bulk moves per second: the result's
// latencies are that phase's, and the figures compare both. The memory
// the connections took on the nodes is reported per connection. With
// BulkOver BulkOverUDP the bulk moves are UDP packets (playudp.go) and the
// nodes' gsd_udp_packets_total and gsd_udp_actions_total, read before and
// after the bulk, say what became of them; with AuthKey every connection
// carries a token.
func PlayBattle(ctx context.Context, t *Target, p LoadParams, pp PlayParams, tm Timing) (*Result, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if pp.BulkRate < 0 {
		return nil, fmt.Errorf("loadgen: bulk rate must be >= 0, not %v", pp.BulkRate)
	}
	if p.Players > MaxPlayPlayers {
		return nil, fmt.Errorf("loadgen: play supports at most %d players (one WebSocket each), not %d", MaxPlayPlayers, p.Players)
	}
	over, err := pp.bulkOver()
	if err != nil {
		return nil, err
	}
	udp := over == BulkOverUDP
	r := newResult("play")
	p.into(r)
	r.Level = "client (WebSocket play)"
	if udp {
		r.Scenario, r.Level = "play-udp", "client (WebSocket play, bulk over UDP)"
	}
	if pp.AuthKey != nil {
		r.Level = strings.TrimSuffix(r.Level, ")") + ", JWT auth)"
		r.Params["auth"] = "hs256"
	}
	for _, k := range []string{"batch", "conns", "observers"} {
		delete(r.Params, k)
	}
	r.Params["bulk_rate"] = pp.BulkRate
	r.Params["bulk_over"] = over
	if pp.Encoding != "" {
		r.Params["encoding"] = pp.Encoding
	}
	tm.into(r)
	_, stopSampler := t.sampler(ctx)
	defer func() {
		if r.Procs == nil {
			stopSampler()
		}
	}()
	ctl, err := controlOptions(pp.AuthKey)
	if err != nil {
		return nil, err
	}
	addrs, _, err := t.leaderFirst(ctx, ctl...)
	if err != nil {
		return nil, err
	}
	if err := createWorld(ctx, addrs, p.World, ctl...); err != nil {
		return nil, err
	}
	if err := waitWorld(ctx, addrs, p.World, ctl...); err != nil {
		return nil, err
	}
	l := newLoad(p, addrs)
	defer l.c.Close()

	clients, closeClients := nodeClients(addrs)
	defer closeClients()
	players := make([]*playPlayer, p.Players)
	var closing atomic.Bool
	defer func() { // on an early return: close what was opened
		if !closing.Load() {
			closing.Store(true)
			closePlays(players)
		}
	}()
	t.logf("play: connecting %d players over WebSocket to %d nodes", p.Players, len(addrs))
	mem0 := t.memory(ctx, addrs)
	connStart := time.Now()
	if err := connectPlayers(ctx, t, clients, p, players, l.prefix, pp); err != nil {
		return nil, err
	}
	// Every hello and welcome (and, with auth, every token check), at most
	// playConnectParallel at a time.
	r.Figures["connect_all_s"] = time.Since(connStart).Seconds()
	if udp {
		defer closeUDP(players)
		if err := l.openUDP(players); err != nil {
			return nil, err
		}
	}
	sleepCtx(ctx, time.Second) // let the nodes settle
	perConn(r, mem0, t.memory(ctx, addrs), p.Players)

	var (
		rwg      sync.WaitGroup
		streamMu sync.Mutex
		streamEr []string
	)
	for _, pp := range players {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			if err := l.readPlay(pp); err != nil && !closing.Load() {
				streamMu.Lock()
				streamEr = append(streamEr, err.Error())
				streamMu.Unlock()
			}
		}()
	}
	delivered := func() (n, deltas int64) {
		for _, pp := range players {
			n += pp.received.Load()
			deltas += pp.deltas.Load()
		}
		return n, deltas
	}

	lctx, cancel := context.WithCancel(ctx)
	var awg sync.WaitGroup // actions in flight
	done := make(chan struct{})
	go func() { defer close(done); l.runPlay(lctx, players, &awg) }()
	t.logf("play: %d players, %.0f actions/s", p.Players, p.Rate)
	if tm.Warmup > 0 {
		measure(ctx, t, l, "warmup", tm.Warmup)
	}
	d0, x0 := delivered()
	hc := &http.Client{Timeout: scrapeTimeout}
	stages0, stagesErr := scrapeStages(ctx, hc, addrs)
	cpu0 := t.cpu()
	m := measure(ctx, t, l, "play", tm.Duration)
	cpu1 := t.cpu()
	d1, x1 := delivered()
	cpuPerDelivery(r, t, cpu0, cpu1, d1-d0+x1-x0)
	stages1, err := scrapeStages(ctx, hc, addrs)
	if stagesErr = errors.Join(stagesErr, err); stagesErr == nil {
		stages1.since(stages0).into(r)
	}
	var (
		without             *meter
		udpBefore, udpAfter udpCounts
		udpErr              error
		bulkStart           time.Time
		bulkSecs            float64
	)
	if pp.BulkRate > 0 {
		without = m
		if udp {
			udpBefore, udpErr = scrapeUDP(ctx, addrs)
		}
		bctx, bcancel := context.WithCancel(lctx)
		bdone := make(chan struct{})
		bulkStart = time.Now()
		go func() { defer close(bdone); l.runBulk(bctx, players, pp.BulkRate, udp, &awg) }()
		t.logf("play: + %.0f bulk moves/s over %s", pp.BulkRate, over)
		measure(ctx, t, l, "bulk-warmup", time.Second)
		d0, x0 = delivered()
		m = measure(ctx, t, l, "with-bulk", tm.Duration)
		d1, x1 = delivered()
		bulkSecs = time.Since(bulkStart).Seconds()
		bcancel()
		<-bdone
		if udp && udpErr == nil {
			udpAfter, udpErr = settleUDP(ctx, addrs)
		}
	}
	cancel()
	<-done
	awg.Wait()
	resumes := 0
	for _, pp := range players {
		_, n := pp.play.Session()
		resumes += n
	}
	closing.Store(true)
	closePlays(players)
	rwg.Wait()
	r.Procs = stopSampler()

	m.into(r, p.Players, 0)
	delete(r.Figures, "bytes_per_s_per_player") // WebSocket traffic is not counted
	r.Counts["unsent_at_end"] = l.unsent.Load()
	r.Counts["resumes"] = int64(resumes)
	r.Counts["delivered_events"] = d1 - d0
	r.Figures["offered_per_s"] = p.Rate
	r.Figures["delivered_events_per_s"] = float64(d1-d0) / r.Seconds
	r.Figures["delivered_events_per_s_per_player"] = float64(d1-d0) / r.Seconds / float64(p.Players)
	r.Counts["delivered_deltas"] = x1 - x0
	r.Counts["bulk_sent"] = l.bulkSent.Load()
	r.Counts["bulk_failed"] = l.bulkFailed.Load()
	if bulkSecs > 0 {
		r.Figures["bulk_offered_per_s"] = float64(l.bulkSent.Load()+l.bulkFailed.Load()) / bulkSecs
	}
	if without != nil {
		wr := newResult("without bulk")
		without.into(wr, p.Players, 0)
		with := newResult("with bulk")
		m.into(with, p.Players, 0)
		r.Phases = append(r.Phases, *wr, *with)
		r.Figures["propagation_p99_without_bulk_ms"] = wr.Latency["propagation"].P99
		r.Figures["propagation_p99_with_bulk_ms"] = with.Latency["propagation"].P99
		r.Figures["action_p99_without_bulk_ms"] = wr.Latency["action_commit"].P99
		r.Figures["action_p99_with_bulk_ms"] = with.Latency["action_commit"].P99
		if udp {
			if udpErr != nil {
				r.check("udp lane counters read", false, udpErr.Error())
			} else {
				udpInto(r, l.bulkSent.Load(), l.bulkFailed.Load(), bulkSecs, udpBefore, udpAfter)
				forged, replayed := r.Counts["udp_packets_forged"], r.Counts["udp_packets_replayed"]
				r.check("udp packets authentic and fresh", forged == 0 && replayed == 0 && r.Counts["udp_packets_accepted"] > 0,
					fmt.Sprintf("%d accepted, %d forged, %d replayed", r.Counts["udp_packets_accepted"], forged, replayed))
			}
		}
	}
	if len(streamEr) > 0 {
		r.check("play streams stayed up", false, fmt.Sprintf("%d ended: %s", len(streamEr), streamEr[0]))
	} else {
		r.check("play streams stayed up", true, fmt.Sprintf("%d players, %d resumes", p.Players, resumes))
	}
	return r, ctx.Err()
}

// nodeClients returns one client per node, each trying its node first (a
// resume may move on), and a function that closes them.
func nodeClients(addrs []string) ([]*client.Client, func()) {
	clients := make([]*client.Client, len(addrs))
	for i := range addrs {
		rot := append(append([]string{}, addrs[i:]...), addrs[:i]...)
		clients[i] = client.New(rot, client.WithAttemptTimeout(5*time.Second),
			client.WithBackoff(10*time.Millisecond, 500*time.Millisecond))
	}
	return clients, func() {
		for _, c := range clients {
			c.Close()
		}
	}
}

// connectPlayers opens the players' play sessions, spread over the nodes.
func connectPlayers(ctx context.Context, t *Target, clients []*client.Client, p LoadParams, players []*playPlayer, prefix string, pp PlayParams) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		opened   atomic.Int64
	)
	sem := make(chan struct{}, playConnectParallel)
	stop := t.progress(ctx, "connect", 0, func() string {
		return fmt.Sprintf("players %5d/%d", opened.Load(), len(players))
	})
	defer stop()
	for i := range players {
		sem <- struct{}{}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			// Players ack once a second (a resume re-sends at most about
			// a second of events): at the client's default 100 ms, 1,000
			// players sent 10,000 acks a second, which the nodes read one
			// syscall each, and the acks were a sixth of the load
			// generator's CPU (profile of gsdctl bench play --cpuprofile).
			buf, ackEvery := playBuffer, time.Second
			if len(players) > 1000 {
				buf = bigPlayBuffer
			}
			// Players count and time events, never apply them: decoding
			// their changes would be most of the load generator's CPU.
			opts := client.PlayOptions{Player: prefix + strconv.Itoa(i), Buffer: buf, AckInterval: ackEvery, Encoding: pp.Encoding, HeadersOnly: true}
			if pp.AuthKey != nil {
				opts.TokenSource = tokenSource(pp.AuthKey, opts.Player)
			}
			pl, err := clients[i%len(clients)].Play(cctx, p.World, opts)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("play: connect player %d: %w", i, err)
				}
				mu.Unlock()
				return
			}
			pp := &playPlayer{play: pl, sem: make(chan struct{}, playInflight)}
			if len(players) > 1 {
				pp.watch = prefix + strconv.Itoa((i+1)%len(players))
			}
			mu.Lock()
			players[i] = pp
			mu.Unlock()
			opened.Add(1)
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// closePlays ends every open session (bye), in parallel.
func closePlays(players []*playPlayer) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, playConnectParallel)
	for _, pp := range players {
		if pp == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_ = pp.play.Close()
		}()
	}
	wg.Wait()
}

// readPlay reads a player's stream until the Play ends: every event is
// counted, the watched player's are measured.
func (l *load) readPlay(pp *playPlayer) error {
	for {
		ev, err := pp.play.Next(context.Background())
		if err != nil {
			if errors.Is(err, client.ErrPlayClosed) {
				return nil
			}
			return err
		}
		if ev.Status == client.DeltaStatus {
			pp.deltas.Add(1)
			continue
		}
		pp.received.Add(1)
		if pp.watch == "" || ev.Player != pp.watch {
			continue
		}
		now := time.Now()
		m := l.cur.Load()
		m.fanout.Record(time.Duration(now.UnixNano() - ev.Time))
		if ev.Priority == "critical" && !ev.Duplicate {
			if sent, ok := l.sentAt(ev.Player, ev.ClientSeq); ok {
				m.propagation.Record(time.Duration(now.UnixNano() - sent))
			}
		}
	}
}

// runPlay paces actions (as run does) until ctx ends, each sent by its
// player over its play connection without waiting for earlier ones.
func (l *load) runPlay(ctx context.Context, players []*playPlayer, awg *sync.WaitGroup) {
	next := 0 // round-robin over players
	l.pace(ctx, func(intended time.Time, m *meter, due int) bool {
		for ; due > 0; due-- {
			i := next
			next = (next + 1) % l.p.Players
			a := l.next(i, intended.UnixNano())
			awg.Add(1)
			go l.playSend(ctx, players[i], job{intended: intended, m: m}, a, awg)
		}
		return true
	})
}

// playSend sends one action over its player's connection and settles it.
func (l *load) playSend(ctx context.Context, pp *playPlayer, j job, a client.ActionRequest, awg *sync.WaitGroup) {
	defer awg.Done()
	select {
	case pp.sem <- struct{}{}:
	case <-ctx.Done():
		l.unsent.Add(1)
		return
	}
	defer func() { <-pp.sem }()
	j.m.tally.Sent.Add(1)
	actx, cancel := context.WithTimeout(context.Background(), l.p.RequestTimeout)
	defer cancel()
	start := time.Now()
	ev, err := pp.play.Act(actx, a)
	l.settle(j.m, j, start, a, ev, err)
}

// runBulk sends rate bulk moves per second, round-robin over the players,
// each its own position, until ctx ends; they are counted, not measured.
// Over UDP each move is one packet: nothing waits for an answer, and
// every packet has left when runBulk returns (the nodes' counters are
// read then).
func (l *load) runBulk(ctx context.Context, players []*playPlayer, rate float64, udp bool, awg *sync.WaitGroup) {
	var uwg sync.WaitGroup
	defer uwg.Wait()
	next := 0
	every(ctx, l.p.Tick, rate, func(intended time.Time) {
		i := next
		next = (next + 1) % len(players)
		if udp {
			uwg.Add(1)
			go func() { defer uwg.Done(); l.udpMove(players[i], i) }()
			return
		}
		a := l.move(i, intended.UnixNano())
		awg.Add(1)
		go l.bulkSend(ctx, players[i], a, awg)
	})
}

// move builds a bulk move of player i's own entity.
func (l *load) move(i int, intended int64) client.ActionRequest {
	seq := l.takeSeq(i, intended)
	id := l.prefix + strconv.Itoa(i)
	l.bulkMu.Lock()
	x, y := l.bulkRng.Int64N(1000), l.bulkRng.Int64N(1000)
	l.bulkMu.Unlock()
	return client.ActionRequest{Player: id, Seq: seq, Priority: client.PriorityBulk,
		Ops: []wire.Op{client.Set(id, "x", wire.Int(x)), client.Set(id, "y", wire.Int(y))}}
}

// bulkSend sends one bulk move over its player's connection; a player
// with its actions in flight at the bound skips it (open loop).
func (l *load) bulkSend(ctx context.Context, pp *playPlayer, a client.ActionRequest, awg *sync.WaitGroup) {
	defer awg.Done()
	select {
	case pp.sem <- struct{}{}:
	default:
		l.bulkFailed.Add(1)
		return
	}
	defer func() { <-pp.sem }()
	actx, cancel := context.WithTimeout(ctx, l.p.RequestTimeout)
	defer cancel()
	if _, err := pp.play.Act(actx, a); err != nil {
		l.bulkFailed.Add(1)
		return
	}
	l.bulkSent.Add(1)
}
