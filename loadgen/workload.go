package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// LoadParams size an open-loop battle: Players simulated players in one
// world sending Rate actions/s in total. Every Tick the pacer schedules the
// actions due by then, in HTTP requests of Batch actions (1: one POST
// /actions each), and at most Conns requests are in flight. Latency is
// measured from each action's scheduled (intended) send time, so a server
// that stalls is charged for every action that should have been sent
// meanwhile (no coordinated omission).
type LoadParams struct {
	World     string
	Players   int
	Items     int           // contested items (pickups with expect "*")
	Rate      float64       // actions per second, all players together
	Tick      time.Duration // scheduling interval
	Batch     int           // actions per HTTP request
	Conns     int           // HTTP requests in flight at most
	Observers int           // event-stream followers measuring propagation (player B)
	Seed      uint64
	// RequestTimeout bounds one request with its retries (same seqs).
	RequestTimeout time.Duration
}

// DefaultLoadParams returns a small battle.
func DefaultLoadParams() LoadParams {
	return LoadParams{World: "bench", Players: 1000, Items: 64, Rate: 2000, Tick: 10 * time.Millisecond,
		Batch: 32, Conns: 32, Observers: 2, Seed: 1, RequestTimeout: 30 * time.Second}
}

func (p *LoadParams) validate() error {
	if p.World == "" || p.Players < 1 || p.Items < 1 || p.Rate <= 0 || p.Tick <= 0 || p.Batch < 1 || p.Conns < 1 || p.Observers < 0 {
		return fmt.Errorf("loadgen: bad load parameters %+v", *p)
	}
	if p.RequestTimeout <= 0 {
		p.RequestTimeout = 30 * time.Second
	}
	return nil
}

func (p LoadParams) into(r *Result) {
	r.Params["players"] = p.Players
	r.Params["items"] = p.Items
	r.Params["rate"] = p.Rate
	r.Params["tick_ms"] = float64(p.Tick) / 1e6
	r.Params["batch"] = p.Batch
	r.Params["conns"] = p.Conns
	r.Params["observers"] = p.Observers
	r.Level = "client (HTTP actions:batch)"
	if p.Batch == 1 {
		r.Level = "client (HTTP single actions)"
	}
}

// meter collects one phase's figures.
type meter struct {
	name                                     string
	start                                    time.Time
	tally                                    Tally
	commit, uncorrected, propagation, fanout *Hist
	playerBytes0, observerBytes0             int64
	end                                      time.Time
	playerBytesDelta, observerBytesDelta     int64
}

func newMeter(name string) *meter {
	return &meter{name: name, start: time.Now(), commit: NewHist(), uncorrected: NewHist(), propagation: NewHist(), fanout: NewHist()}
}

// player is one simulated player: its seqs and their intended send times.
type player struct {
	mu   sync.Mutex
	seq  uint64
	sent []int64 // intended send time (unix ns) of seq i+1
}

type hold struct {
	holder  int
	version uint64
}

// ack is an acknowledged committed event.
type ack struct {
	seq       uint64
	player    string
	clientSeq uint64
}

// load is a running open-loop battle.
type load struct {
	p       LoadParams
	c       *client.Client
	bytes   ByteCounter // players' requests and answers
	obytes  ByteCounter // observers' streams
	prefix  string
	players []player
	rng     *rand.Rand

	itemsMu sync.Mutex
	items   map[int]hold

	cur        atomic.Pointer[meter]
	lastOK     atomic.Int64 // unix ns of the newest applied answer
	firstAfter atomic.Int64
	killAt     atomic.Int64 // unix ns; 0 = no fault
	maxGap     atomic.Int64

	keepAcks atomic.Bool
	acksMu   sync.Mutex
	acks     []ack

	unsent atomic.Int64
	// the play scenario's extra bulk moves (play.go)
	bulkMu     sync.Mutex
	bulkRng    *rand.Rand
	bulkSent   atomic.Int64
	bulkFailed atomic.Int64
	wg         sync.WaitGroup
	obsErr     chan error
}

func newLoad(p LoadParams, addrs []string) *load {
	l := &load{p: p, prefix: "p", players: make([]player, p.Players), items: map[int]hold{},
		rng: rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)), bulkRng: rand.New(rand.NewPCG(p.Seed, 0x5851f42d4c957f2d)), obsErr: make(chan error, p.Observers+1)}
	l.c = client.New(addrs, client.WithHTTPClient(l.bytes.HTTPClient(p.Conns)),
		client.WithAttemptTimeout(5*time.Second), client.WithBackoff(10*time.Millisecond, 500*time.Millisecond))
	l.cur.Store(newMeter("warmup"))
	return l
}

// phase starts a new measuring phase and returns the one it ends.
func (l *load) phase(name string) *meter {
	m := newMeter(name)
	m.playerBytes0, m.observerBytes0 = l.bytes.Total(), l.obytes.Total()
	old := l.cur.Swap(m)
	old.end = m.start
	old.playerBytesDelta = m.playerBytes0 - old.playerBytes0
	old.observerBytesDelta = m.observerBytes0 - old.observerBytes0
	return old
}

// next builds one action of player i (moves, attacks, pickups and drops,
// trades), as the battle bots do.
func (l *load) next(i int, intended int64) client.ActionRequest {
	pl := &l.players[i]
	pl.mu.Lock()
	pl.seq++
	pl.sent = append(pl.sent, intended)
	seq := pl.seq
	pl.mu.Unlock()
	id := l.prefix + strconv.Itoa(i)
	a := client.ActionRequest{Player: id, Seq: seq, Priority: client.PriorityCritical}
	switch r := l.rng.IntN(100); {
	case r < 55:
		a.Priority = client.PriorityBulk
		a.Ops = []wire.Op{
			client.Set(id, "x", wire.Int(l.rng.Int64N(1000))),
			client.Set(id, "y", wire.Int(l.rng.Int64N(1000))),
		}
	case r < 80:
		target := l.prefix + strconv.Itoa(l.rng.IntN(l.p.Players))
		dmg := 1 + l.rng.Int64N(10)
		a.Ops = []wire.Op{client.Incr(target, "hp", -dmg), client.Set(id, "best", wire.Int(dmg))}
	case r < 95:
		item := l.rng.IntN(l.p.Items)
		l.itemsMu.Lock()
		h, held := l.items[item]
		l.itemsMu.Unlock()
		name := "item" + strconv.Itoa(item)
		if held && h.holder == i {
			a.Ops = []wire.Op{client.ExpectVersion(client.Delete(name), h.version)}
		} else {
			a.Ops = []wire.Op{client.ExpectVersion(client.Set(name, "owner", wire.String(id)), 0)}
		}
	default:
		a.Ops = []wire.Op{client.Add(id, "inventory", wire.String("gem"+strconv.Itoa(l.rng.IntN(20))))}
	}
	return a
}

// sentAt returns the intended send time of a player's action, if it is ours.
func (l *load) sentAt(player string, seq uint64) (int64, bool) {
	s, ok := strings.CutPrefix(player, l.prefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(l.players) || seq == 0 {
		return 0, false
	}
	pl := &l.players[i]
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if int(seq) > len(pl.sent) {
		return 0, false
	}
	return pl.sent[seq-1], true
}

type job struct {
	acts     []client.ActionRequest
	intended time.Time
	m        *meter
}

// run paces actions until ctx ends, then waits for the requests in flight.
func (l *load) run(ctx context.Context) {
	jobs := make(chan job, 1<<16)
	var wg sync.WaitGroup
	for w := 0; w < l.p.Conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					l.unsent.Add(int64(len(j.acts)))
					continue
				}
				l.send(j)
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	next := 0 // round-robin over players
	l.pace(ctx, func(intended time.Time, m *meter, due int) bool {
		for due > 0 {
			n := min(due, l.p.Batch)
			acts := make([]client.ActionRequest, n)
			for i := range acts {
				acts[i] = l.next(next, intended.UnixNano())
				next = (next + 1) % l.p.Players
			}
			due -= n
			select {
			case jobs <- job{acts: acts, intended: intended, m: m}:
			case <-ctx.Done():
				return false
			}
		}
		return true
	})
}

// pace is the open-loop schedule: at every tick it calls emit with the
// number of actions due by then (Rate × elapsed, minus those already
// handed out), never waiting for answers, until ctx ends or emit returns
// false. Latency is measured from intended, so a slow answer does not hide
// the actions that should have been sent meanwhile (coordinated omission).
func (l *load) pace(ctx context.Context, emit func(intended time.Time, m *meter, due int) bool) {
	t0 := time.Now()
	scheduled := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 1; ; k++ {
		intended := t0.Add(time.Duration(k) * l.p.Tick)
		timer.Reset(time.Until(intended))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		due := int(l.p.Rate*float64(time.Duration(k)*l.p.Tick)/float64(time.Second)) - scheduled
		if due <= 0 {
			continue
		}
		scheduled += due
		if !emit(intended, l.cur.Load(), due) {
			return
		}
	}
}

// send performs one request (retrying unsettled actions with their seqs).
func (l *load) send(j job) {
	m := j.m
	m.tally.Sent.Add(int64(len(j.acts)))
	ctx, cancel := context.WithTimeout(context.Background(), l.p.RequestTimeout)
	defer cancel()
	start := time.Now()
	if len(j.acts) == 1 {
		ev, err := l.c.Act(ctx, l.p.World, j.acts[0])
		l.settle(m, j, start, j.acts[0], ev, err)
		return
	}
	res, err := l.c.ActBatch(ctx, l.p.World, j.acts)
	if err != nil {
		for _, a := range j.acts {
			l.settle(m, j, start, a, wire.Event{}, err)
		}
		return
	}
	for i, r := range res {
		l.settle(m, j, start, j.acts[i], r.Event, r.Err)
	}
}

func (l *load) settle(m *meter, j job, start time.Time, a client.ActionRequest, ev wire.Event, err error) {
	now := time.Now()
	if err != nil {
		m.tally.fail(client.Code(err))
		return
	}
	m.commit.Record(now.Sub(j.intended))
	m.uncorrected.Record(now.Sub(start))
	if ev.Duplicate {
		m.tally.Duplicates.Add(1)
	}
	if l.keepAcks.Load() {
		l.acksMu.Lock()
		l.acks = append(l.acks, ack{seq: ev.Seq, player: a.Player, clientSeq: a.Seq})
		l.acksMu.Unlock()
	}
	switch ev.Status {
	case "applied":
		m.tally.Applied.Add(1)
		l.applied(now, j.intended)
		l.trackItems(a, ev)
	case "conflict":
		m.tally.Conflicts.Add(1)
	default:
		m.tally.Rejected.Add(1)
	}
}

// applied notes an applied answer: the longest pause between applied
// answers, and the first answer to an action scheduled after a fault.
func (l *load) applied(now, intended time.Time) {
	n := now.UnixNano()
	prev := l.lastOK.Swap(n)
	if prev != 0 && n-prev > l.maxGap.Load() {
		l.maxGap.Store(n - prev)
	}
	if k := l.killAt.Load(); k != 0 && intended.UnixNano() >= k {
		l.firstAfter.CompareAndSwap(0, n)
	}
}

func (l *load) trackItems(a client.ActionRequest, ev wire.Event) {
	for _, op := range a.Ops {
		name, ok := strings.CutPrefix(op.Entity, "item")
		if !ok {
			continue
		}
		item, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		holder, _ := strconv.Atoi(strings.TrimPrefix(a.Player, l.prefix))
		l.itemsMu.Lock()
		if op.Kind == wire.OpDelete {
			delete(l.items, item)
		} else {
			l.items[item] = hold{holder: holder, version: ev.Versions[op.Entity]["owner"]}
		}
		l.itemsMu.Unlock()
	}
}

// observe follows the world's feed on addr as player B does: for each event
// of one of our players it records propagation (critical events: A's
// intended send → received here) and fanout (leader time → received).
func (l *load) observe(ctx context.Context, addr string) {
	defer l.wg.Done()
	c := client.New([]string{addr}, client.WithHTTPClient(l.obytes.HTTPClient(1)))
	defer c.Close()
	err := c.Follow(ctx, l.p.World, 0, func(ev wire.Event) error {
		now := time.Now()
		m := l.cur.Load()
		m.fanout.Record(time.Duration(now.UnixNano() - ev.Time))
		if ev.Priority == "critical" && !ev.Duplicate {
			if sent, ok := l.sentAt(ev.Player, ev.ClientSeq); ok {
				m.propagation.Record(time.Duration(now.UnixNano() - sent))
			}
		}
		return nil
	})
	// Follow ends only with an error: the end of the run (ctx) or a failure.
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		l.obsErr <- fmt.Errorf("observer on %s: %w", addr, err)
	}
}

func (l *load) startObservers(ctx context.Context, addrs []string) {
	for i := 0; i < l.p.Observers; i++ {
		l.wg.Add(1)
		go l.observe(ctx, addrs[i%len(addrs)])
	}
	// Give the streams a moment to open so that they see the first events.
	time.Sleep(100 * time.Millisecond)
}

func (l *load) status() string {
	m := l.cur.Load()
	el := time.Since(m.start).Seconds()
	return fmt.Sprintf("%-9s %7.0f ev/s  p99 %6.1fms  conflicts %d  failed %d", m.name,
		float64(m.tally.Committed())/max(el, 0.001), m.commit.Summary().P99, m.tally.Conflicts.Load(), m.tally.Failed.Load())
}

// into writes a finished phase's figures into r.
func (m *meter) into(r *Result, players, observers int) {
	secs := m.end.Sub(m.start).Seconds()
	r.Seconds = secs
	m.tally.into(r)
	r.Figures["events_per_s"] = float64(m.tally.Committed()) / secs
	r.Figures["applied_per_s"] = float64(m.tally.Applied.Load()) / secs
	r.Figures["bytes_per_s_per_player"] = float64(m.playerBytesDelta) / secs / float64(players)
	if observers > 0 {
		r.Figures["bytes_per_s_per_observer"] = float64(m.observerBytesDelta) / secs / float64(observers)
	}
	for k, h := range map[string]*Hist{"action_commit": m.commit, "action_commit_uncorrected": m.uncorrected,
		"propagation": m.propagation, "fanout": m.fanout} {
		if h.Count() > 0 {
			r.Latency[k] = h.Summary()
		}
	}
}

// every calls f(intended) rate times per second, open loop, until ctx
// ends: at each tick, once for every call due by then, with the time it
// was due. A starved pacer sees the end late: it schedules nothing once
// ctx has ended.
func every(ctx context.Context, tick time.Duration, rate float64, f func(intended time.Time)) {
	if rate <= 0 {
		return
	}
	t0 := time.Now()
	done := 0
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			due := int(rate*now.Sub(t0).Seconds()) - done
			for ; due > 0 && ctx.Err() == nil; due-- {
				done++
				f(t0.Add(time.Duration(float64(done) / rate * float64(time.Second))))
			}
		}
	}
}
