package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// The players-10k scenario: one world, its players on WebSocket play
// connections spread over the nodes, interest on (each player sees the
// players near it), a steady mix of critical actions and bulk moves, and
// steps of N players (ramped in, with churn) until critical propagation
// misses its goal. The nodes must run with an interest grid of
// Players10kParams.Cell (gsd --play-interest-cell; gsdctl bench sets it
// for the local cluster).
//
// Geometry: each player has a home, a uniform point of the unit square
// scaled to the step's map side, and moves around it within a quarter
// cell; the side grows with N so that the (2·radius+1)² cells around a
// player hold about Visible players at every step.

// Players10kParams configure the players-10k scenario.
type Players10kParams struct {
	Steps             []int         // players per step, ascending
	CriticalPerPlayer float64       // critical actions per player per second
	MovesPerPlayer    float64       // bulk moves per player per second
	JoinRate          float64       // players joining per second during a ramp
	ChurnPerMinute    float64       // share of the players reconnecting per minute
	Cell              float64       // the nodes' interest cell size
	Radius            int           // the nodes' interest radius in cells
	Visible           int           // players each one should see
	Goal              time.Duration // critical propagation P99 a step must hold
	MeasureEvery      int           // one player in this many records propagation (load generator CPU)
}

// DefaultPlayers10kParams are the figures: 1,000 critical actions/s
// and 10,000 bulk moves/s at 10,000 players, joining at 500/s, 5% churn per
// minute, about 75 visible players, P99 ≤ 50 ms.
func DefaultPlayers10kParams() Players10kParams {
	return Players10kParams{
		Steps: []int{1000, 2000, 5000, 10000}, CriticalPerPlayer: 0.1, MovesPerPlayer: 1,
		JoinRate: 500, ChurnPerMinute: 0.05, Cell: 100, Radius: 1, Visible: 75,
		Goal: 50 * time.Millisecond, MeasureEvery: 4,
	}
}

func (pp Players10kParams) validate() error {
	switch {
	case len(pp.Steps) == 0:
		return errors.New("loadgen: players-10k needs at least one step")
	case pp.CriticalPerPlayer <= 0 || pp.MovesPerPlayer < 0 || pp.JoinRate <= 0 || pp.ChurnPerMinute < 0:
		return errors.New("loadgen: players-10k rates must be positive (moves and churn may be 0)")
	case pp.Cell <= 0 || pp.Radius < 0 || pp.Visible < 1 || pp.Goal <= 0 || pp.MeasureEvery < 1:
		return errors.New("loadgen: players-10k needs a cell > 0, a radius >= 0, visible >= 1, a goal > 0 and measure-every >= 1")
	}
	prev := 0
	for _, n := range pp.Steps {
		if n <= prev || n > MaxPlayPlayers {
			return fmt.Errorf("loadgen: players-10k steps must ascend within 1..%d, not %v", MaxPlayPlayers, pp.Steps)
		}
		prev = n
	}
	return nil
}

// side is the map side for n players: (2r+1)² cells hold Visible of them.
func (pp Players10kParams) side(n int) float64 {
	w := float64(2*pp.Radius + 1)
	return pp.Cell * w * math.Sqrt(float64(n)/float64(pp.Visible))
}

// p10k is the scenario's running state.
type p10k struct {
	l    *load
	pp   Players10kParams
	side atomic.Uint64 // math.Float64bits of the current map side

	mem0 memSample // the nodes' memory before the first player
	// The nodes' events sent and the players' deliveries before the first
	// player: nothing is in flight then, so the totals since are
	// comparable once a step settles (sent0 < 0: not scraped).
	sent0       float64
	deliveries0 int64

	mu      sync.Mutex
	players []*p10kPlayer
	homes   [][2]float64 // unit-square homes, by player index
	rng     *rand.Rand

	deliveries atomic.Int64 // events received (deltas aside)
	deltas     atomic.Int64
	streamErrs atomic.Int64
	firstErr   atomic.Value // string
	critSent   atomic.Int64
	critFailed atomic.Int64
	moveSent   atomic.Int64
	moveFailed atomic.Int64
	churned    atomic.Int64
}

type p10kPlayer struct {
	i       int
	id      string
	play    *client.Play
	measure bool
	sem     chan struct{}
}

// Players10k runs the players-10k scenario and reports, per step, critical
// propagation (scheduled send → received by every player the server sent
// it to, among the measuring players), the CPU per delivered event of the
// nodes and of the load generator, memory per connection, the events the
// nodes say they sent against those the players received, and overlaps
// (duplicates a resume sent, dropped by the client); and the largest N
// held at P99 ≤ Goal with no gap.
func Players10k(ctx context.Context, t *Target, p LoadParams, pp Players10kParams, tm Timing) (*Result, error) {
	if err := pp.validate(); err != nil {
		return nil, err
	}
	p.Players = pp.Steps[len(pp.Steps)-1]
	p.Rate = 1 // validate's; the scenario paces itself
	if err := p.validate(); err != nil {
		return nil, err
	}
	r := newResult("players-10k")
	p.into(r)
	r.Level = "client (WebSocket play, interest on)"
	for _, k := range []string{"batch", "conns", "observers", "rate", "items"} {
		delete(r.Params, k)
	}
	r.Params["steps"] = fmt.Sprint(pp.Steps)
	r.Params["critical_per_player_s"] = pp.CriticalPerPlayer
	r.Params["moves_per_player_s"] = pp.MovesPerPlayer
	r.Params["join_per_s"] = pp.JoinRate
	r.Params["churn_per_min"] = pp.ChurnPerMinute
	r.Params["interest_cell"] = pp.Cell
	r.Params["visible"] = pp.Visible
	r.Params["goal_p99_ms"] = float64(pp.Goal) / float64(time.Millisecond)
	tm.into(r)
	_, stopSampler := t.sampler(ctx)
	defer func() {
		if r.Procs == nil {
			stopSampler()
		}
	}()
	addrs, _, err := t.leaderFirst(ctx)
	if err != nil {
		return nil, err
	}
	if err := createWorld(ctx, addrs, p.World); err != nil {
		return nil, err
	}
	if err := waitWorld(ctx, addrs, p.World); err != nil {
		return nil, err
	}
	l := newLoad(p, addrs)
	defer l.c.Close()
	clients, closeClients := nodeClients(addrs)
	defer closeClients()
	s := &p10k{l: l, pp: pp, rng: rand.New(rand.NewPCG(p.Seed, 0x10000))}
	var readers sync.WaitGroup
	defer readers.Wait()
	defer s.closeAll()

	held := 0
	for _, n := range pp.Steps {
		if ctx.Err() != nil {
			break
		}
		step, err := s.step(ctx, t, clients, addrs, n, tm, &readers)
		if err != nil {
			return nil, err
		}
		r.Phases = append(r.Phases, *step)
		ok := step.OK()
		t.logf("players-10k: %d players: propagation p99 %.1f ms, %s", n, step.Latency["propagation"].P99, map[bool]string{true: "held", false: "not held"}[ok])
		if !ok {
			break
		}
		held = n
	}
	r.Procs = stopSampler()
	r.Params["players"] = len(s.players) // the last step's
	r.Figures["largest_n_held"] = float64(held)
	if len(r.Phases) > 0 {
		last := r.Phases[len(r.Phases)-1]
		r.Seconds = last.Seconds
		for k, v := range last.Latency {
			r.Latency[k] = v
		}
		for k, v := range last.Figures {
			r.Figures["last_step_"+k] = v
		}
		for k, v := range last.Counts {
			r.Counts[k] = v
		}
		r.Figures["events_per_s"] = last.Figures["critical_per_s"] + last.Figures["moves_per_s"]
	}
	r.check("a step held critical propagation P99 within the goal", held > 0,
		fmt.Sprintf("largest N held: %d (goal P99 %s)", held, pp.Goal))
	return r, ctx.Err()
}

// step grows the world to n players (at JoinRate), runs the mix with
// churn for the warm-up and the measured time, and reports the step.
func (s *p10k) step(ctx context.Context, t *Target, clients []*client.Client, addrs []string, n int, tm Timing, readers *sync.WaitGroup) (*Result, error) {
	r := newResult(fmt.Sprintf("%d players", n))
	r.Params["players"] = n
	s.side.Store(math.Float64bits(s.pp.side(n)))
	if len(s.players) == 0 {
		s.mem0 = t.memory(ctx, addrs) // the nodes before any player
		s.sent0 = s.scrapeSent(ctx, &http.Client{Timeout: scrapeTimeout}, addrs)
		s.deliveries0 = s.deliveries.Load()
	}
	rampStart := time.Now()
	if err := s.join(ctx, t, clients, n, readers); err != nil {
		return nil, err
	}
	r.Figures["ramp_s"] = time.Since(rampStart).Seconds()
	// Per connection over all of them: a step's own few hundred moved
	// less than the heap does by itself.
	perConn(r, s.mem0, t.memory(ctx, addrs), n)

	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.runCritical(lctx, n) }()
	go func() { defer wg.Done(); s.runMoves(lctx, n) }()
	go func() { defer wg.Done(); s.runChurn(lctx, n) }()
	measure(ctx, t, s.l, "warmup", tm.Warmup)

	hc := &http.Client{Timeout: scrapeTimeout}
	d0, x0 := s.deliveries.Load(), s.deltas.Load()
	c0, m0, ch0 := s.critSent.Load(), s.moveSent.Load(), s.churned.Load()
	stages0, stagesErr := scrapeStages(ctx, hc, addrs)
	cpu0 := t.cpu()
	m := measure(ctx, t, s.l, "measure", tm.Duration)
	cpu1 := t.cpu()
	stages1, err := scrapeStages(ctx, hc, addrs)
	stagesErr = errors.Join(stagesErr, err)
	d1, x1 := s.deliveries.Load(), s.deltas.Load()
	c1, m1, ch1 := s.critSent.Load(), s.moveSent.Load(), s.churned.Load()
	cancel()
	wg.Wait()
	// Settle: the nodes' sent count and the players' received count are
	// compared once nothing is in flight.
	received, sent := s.settle(ctx, hc, addrs)

	m.into(r, n, 0)
	delete(r.Figures, "bytes_per_s_per_player")
	secs := r.Seconds
	deliveries := d1 - d0
	r.Figures["critical_per_s"] = float64(c1-c0) / secs
	r.Figures["moves_per_s"] = float64(m1-m0) / secs
	r.Figures["delivered_events_per_s"] = float64(deliveries) / secs
	r.Figures["deltas_per_s_per_player"] = float64(x1-x0) / secs / float64(n)
	r.Figures["churned_per_min"] = float64(ch1-ch0) / secs * 60
	r.Counts["critical_failed"] = s.critFailed.Load()
	r.Counts["moves_failed"] = s.moveFailed.Load()
	// CPU per message: an event or a coalesced delta frame (which holds
	// the tick's moves of the players in view) delivered to one player.
	msgs := deliveries + (x1 - x0)
	r.Figures["messages_per_s"] = float64(msgs) / secs
	cpuPerDelivery(r, t, cpu0, cpu1, msgs)
	r.Figures["gsd_cpu_percent"] = 100 * (cpu1.gsd - cpu0.gsd).Seconds() / secs
	r.Figures["loadgen_cpu_percent"] = 100 * (cpu1.self - cpu0.self).Seconds() / secs
	if stagesErr == nil {
		stages1.since(stages0).into(r)
	} else {
		r.Notes = append(r.Notes, "the nodes' stage histograms could not be read: "+stagesErr.Error())
	}
	overlaps := int64(0)
	for _, pl := range s.players {
		overlaps += pl.play.Overlaps()
	}
	r.Counts["overlaps_dropped"] = overlaps
	if sent >= 0 && s.sent0 >= 0 {
		// Since the run's start, not the measurement's: events in flight
		// when the measurement began would count as received only.
		r.Counts["nodes_sent_since_start"] = int64(sent - s.sent0)
		r.Counts["players_received_since_start"] = received - s.deliveries0
	}
	gaps := s.streamErrs.Load()
	r.Counts["stream_errors"] = gaps
	p99 := r.Latency["propagation"].P99
	r.check("critical propagation p99 within goal", r.Latency["propagation"].Count > 0 && p99 <= float64(s.pp.Goal)/float64(time.Millisecond),
		fmt.Sprintf("p99 %.1f ms (goal %s)", p99, s.pp.Goal))
	detail := "none"
	if gaps > 0 {
		detail = fmt.Sprintf("%d streams ended: %v", gaps, s.firstErr.Load())
	}
	r.check("no gap (every stream's frames followed on)", gaps == 0, detail)
	return r, nil
}

// join connects players until there are n, at JoinRate, each placing its
// own entity at its home before it counts as joined.
func (s *p10k) join(ctx context.Context, t *Target, clients []*client.Client, n int, readers *sync.WaitGroup) error {
	from := len(s.players)
	sem := make(chan struct{}, playConnectParallel)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	start := time.Now()
	stop := t.progress(ctx, "join", 0, func() string { return fmt.Sprintf("players %d → %d", from, n) })
	defer stop()
	for i := from; i < n; i++ {
		// Paced: player i joins at start + (i-from)/JoinRate.
		sleepCtx(ctx, time.Until(start.Add(time.Duration(float64(i-from)/s.pp.JoinRate*float64(time.Second)))))
		if ctx.Err() != nil {
			break
		}
		s.mu.Lock()
		s.homes = append(s.homes, [2]float64{s.rng.Float64(), s.rng.Float64()})
		pl := &p10kPlayer{i: i, id: s.l.prefix + strconv.Itoa(i), measure: i%s.pp.MeasureEvery == 0, sem: make(chan struct{}, playInflight)}
		s.players = append(s.players, pl)
		s.mu.Unlock()
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.connect(ctx, clients[i%len(clients)], pl, readers); err != nil {
				errMu.Lock()
				firstErr = errors.Join(firstErr, err)
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// connect opens pl's play connection, starts its reader and places it.
func (s *p10k) connect(ctx context.Context, c *client.Client, pl *p10kPlayer, readers *sync.WaitGroup) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	play, err := c.Play(cctx, s.l.p.World, client.PlayOptions{Player: pl.id, Buffer: bigPlayBuffer, AckInterval: time.Second, HeadersOnly: true})
	if err != nil {
		return fmt.Errorf("players-10k: connect %s: %w", pl.id, err)
	}
	pl.play = play
	readers.Add(1)
	go func() { defer readers.Done(); s.read(pl) }()
	x, y := s.position(pl)
	a := client.ActionRequest{Player: pl.id, Seq: s.l.takeSeq(pl.i, time.Now().UnixNano()), Priority: client.PriorityCritical,
		Ops: []wire.Op{client.Set(pl.id, "x", wire.Int(x)), client.Set(pl.id, "y", wire.Int(y))}}
	if _, err := play.Act(cctx, a); err != nil {
		return fmt.Errorf("players-10k: place %s: %w", pl.id, err)
	}
	return nil
}

// position is a point within a quarter cell of pl's home on the current map.
func (s *p10k) position(pl *p10kPlayer) (int64, int64) {
	side := math.Float64frombits(s.side.Load())
	s.mu.Lock()
	h := s.homes[pl.i]
	jx, jy := s.rng.Float64()-0.5, s.rng.Float64()-0.5
	s.mu.Unlock()
	q := s.pp.Cell / 4
	return int64(h[0]*side + jx*q), int64(h[1]*side + jy*q)
}

// read counts pl's events; a measuring player records the propagation of
// every critical event it receives from another player.
func (s *p10k) read(pl *p10kPlayer) {
	for {
		ev, err := pl.play.Next(context.Background())
		if err != nil {
			if !errors.Is(err, client.ErrPlayClosed) {
				s.streamErrs.Add(1)
				s.firstErr.CompareAndSwap(nil, err.Error())
			}
			return
		}
		if ev.Status == client.DeltaStatus {
			s.deltas.Add(1)
			continue
		}
		s.deliveries.Add(1)
		if !pl.measure || ev.Priority != "critical" || ev.Player == pl.id || ev.Duplicate {
			continue
		}
		if sent, ok := s.l.sentAt(ev.Player, ev.ClientSeq); ok {
			s.l.cur.Load().propagation.Record(time.Duration(time.Now().UnixNano() - sent))
		}
	}
}

// runCritical sends critical actions (a shot: a counter on the sender's
// own entity, seen by the players near it) at CriticalPerPlayer × n per
// second, from random players.
func (s *p10k) runCritical(ctx context.Context, n int) {
	var wg sync.WaitGroup
	defer wg.Wait()
	m := s.l.cur.Load
	every(ctx, 10*time.Millisecond, s.pp.CriticalPerPlayer*float64(n), func(intended time.Time) {
		pl := s.pick(n)
		a := client.ActionRequest{Player: pl.id, Seq: s.l.takeSeq(pl.i, intended.UnixNano()), Priority: client.PriorityCritical,
			Ops: []wire.Op{client.Incr(pl.id, "shots", 1)}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mt := m()
			mt.tally.Sent.Add(1)
			if !s.send(ctx, pl, a) {
				s.critFailed.Add(1)
				return
			}
			s.critSent.Add(1)
			mt.tally.Applied.Add(1)
			mt.commit.Record(time.Since(intended))
		}()
	})
}

// runMoves sends bulk moves near each player's home at MovesPerPlayer × n
// per second, round-robin.
func (s *p10k) runMoves(ctx context.Context, n int) {
	var wg sync.WaitGroup
	defer wg.Wait()
	next := 0
	every(ctx, 10*time.Millisecond, s.pp.MovesPerPlayer*float64(n), func(intended time.Time) {
		pl := s.players[next%n]
		next++
		x, y := s.position(pl)
		a := client.ActionRequest{Player: pl.id, Seq: s.l.takeSeq(pl.i, intended.UnixNano()), Priority: client.PriorityBulk,
			Ops: []wire.Op{client.Set(pl.id, "x", wire.Int(x)), client.Set(pl.id, "y", wire.Int(y))}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.send(ctx, pl, a) {
				s.moveSent.Add(1)
			} else {
				s.moveFailed.Add(1)
			}
		}()
	})
}

// runChurn cuts ChurnPerMinute × n connections per minute (Drop: as a
// network failure would); each Play resumes by itself.
func (s *p10k) runChurn(ctx context.Context, n int) {
	every(ctx, 10*time.Millisecond, s.pp.ChurnPerMinute*float64(n)/60, func(time.Time) {
		s.pick(n).play.Drop()
		s.churned.Add(1)
	})
}

func (s *p10k) pick(n int) *p10kPlayer {
	s.mu.Lock()
	i := s.rng.IntN(n)
	s.mu.Unlock()
	return s.players[i]
}

// send runs one action on pl's connection; a player at its bound of
// actions in flight skips it (open loop: it counts as failed).
func (s *p10k) send(ctx context.Context, pl *p10kPlayer, a client.ActionRequest) bool {
	select {
	case pl.sem <- struct{}{}:
	default:
		return false
	}
	defer func() { <-pl.sem }()
	actx, cancel := context.WithTimeout(ctx, s.l.p.RequestTimeout)
	defer cancel()
	_, err := pl.play.Act(actx, a)
	return err == nil
}

// scrapeSent sums the nodes' gsd_play_events_sent_total (-1: unreadable).
func (s *p10k) scrapeSent(ctx context.Context, hc *http.Client, addrs []string) float64 {
	total := 0.0
	for _, a := range addrs {
		v, ok := scrapeMetric(ctx, hc, a, "gsd_play_events_sent_total")
		if !ok {
			return -1
		}
		total += v
	}
	return total
}

// settle waits until the players' received count stops moving (at most a
// few seconds) and returns it with the nodes' sent count.
func (s *p10k) settle(ctx context.Context, hc *http.Client, addrs []string) (int64, float64) {
	last := int64(-1)
	for range 50 {
		sleepCtx(ctx, 100*time.Millisecond)
		cur := s.deliveries.Load()
		if cur == last || ctx.Err() != nil {
			break
		}
		last = cur
	}
	return s.deliveries.Load(), s.scrapeSent(ctx, hc, addrs)
}

// cpuSample is the CPU time the nodes and the load generator used so far.
type cpuSample struct{ gsd, self time.Duration }

// cpu reads t's processes' and this process's CPU time from /proc.
func (t *Target) cpu() cpuSample {
	var c cpuSample
	for _, p := range t.Procs {
		if pid := p.PID(); pid > 0 {
			if d, _, err := readProc(pid); err == nil {
				c.gsd += d
			}
		}
	}
	if d, _, err := readProc(os.Getpid()); err == nil {
		c.self = d
	}
	return c
}

// cpuPerDelivery puts the nodes' and the load generator's CPU per message
// delivered to a player (an event or a delta frame) between two samples in
// r's figures (the nodes' only when t samples their processes).
func cpuPerDelivery(r *Result, t *Target, before, after cpuSample, msgs int64) {
	if msgs <= 0 {
		return
	}
	if len(t.Procs) > 0 {
		r.Figures["gsd_cpu_us_per_delivery"] = float64((after.gsd-before.gsd)/time.Microsecond) / float64(msgs)
	}
	r.Figures["loadgen_cpu_us_per_delivery"] = float64((after.self-before.self)/time.Microsecond) / float64(msgs)
}

// closeAll ends every player's session.
func (s *p10k) closeAll() {
	s.mu.Lock()
	var players []*playPlayer
	for _, pl := range s.players {
		if pl.play != nil {
			players = append(players, &playPlayer{play: pl.play})
		}
	}
	s.players = nil
	s.mu.Unlock()
	closePlays(players)
}
