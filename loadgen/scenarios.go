package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
)

// Timing is how long a scenario warms up and measures.
type Timing struct {
	Warmup   time.Duration
	Duration time.Duration
}

func (t Timing) into(r *Result) {
	r.Params["warmup_s"] = t.Warmup.Seconds()
	r.Params["duration_s"] = t.Duration.Seconds()
}

// createWorld creates a world with the battle's rules (an existing one is
// fine); opts add the credential a node with auth on asks for.
func createWorld(ctx context.Context, addrs []string, world string, opts ...client.Option) error {
	c := client.New(addrs, append([]client.Option{client.WithAttemptTimeout(5 * time.Second)}, opts...)...)
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := c.CreateWorld(cctx, world, BattleRules())
	if err != nil && client.Code(err) != wire.CodeWorldExists {
		return fmt.Errorf("create world %s: %w", world, err)
	}
	return nil
}

// waitWorld waits until every node has applied the world's creation, so
// that streams opened on followers find it; opts as for createWorld.
func waitWorld(ctx context.Context, addrs []string, world string, opts ...client.Option) error {
	for _, a := range addrs {
		c := client.New([]string{a}, append([]client.Option{client.WithMaxAttempts(1), client.WithAttemptTimeout(2 * time.Second)}, opts...)...)
		deadline := time.Now().Add(30 * time.Second)
		for {
			ws, err := c.Worlds(ctx)
			if err == nil && slices.ContainsFunc(ws, func(w client.World) bool { return w.ID == world }) {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				c.Close()
				return fmt.Errorf("world %s did not appear on %s: %v", world, a, errors.Join(err, ctx.Err()))
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.Close()
	}
	return nil
}

// startLoad creates the world, starts the pacer and the observers, and
// returns the running load and a stop function that ends it and waits.
func startLoad(ctx context.Context, t *Target, p LoadParams) (*load, func(), error) {
	if err := p.validate(); err != nil {
		return nil, nil, err
	}
	addrs, followers, err := t.leaderFirst(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := createWorld(ctx, addrs, p.World); err != nil {
		return nil, nil, err
	}
	if err := waitWorld(ctx, addrs, p.World); err != nil {
		return nil, nil, err
	}
	l := newLoad(p, addrs)
	lctx, cancel := context.WithCancel(ctx)
	l.startObservers(lctx, followers)
	done := make(chan struct{})
	go func() { defer close(done); l.run(lctx) }()
	stop := func() {
		cancel()
		<-done
		l.wg.Wait()
		l.c.Close()
	}
	return l, stop, nil
}

// measure runs a phase of d with a progress display and returns it.
func measure(ctx context.Context, t *Target, l *load, name string, d time.Duration) *meter {
	l.phase(name)
	stop := t.progress(ctx, name, d, l.status)
	sleepCtx(ctx, d)
	stop()
	return l.phase("after-" + name)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

func observerErrors(l *load, r *Result) {
	for {
		select {
		case err := <-l.obsErr:
			r.check("observer streams without gaps", false, err.Error())
		default:
			return
		}
	}
}

// Battle runs Players in one world at Rate actions/s and reports
// action→commit, propagation and fanout latency, throughput and outcomes.
func Battle(ctx context.Context, t *Target, p LoadParams, tm Timing) (*Result, error) {
	r := newResult("battle")
	p.into(r)
	tm.into(r)
	_, stopSampler := t.sampler(ctx)
	l, stop, err := startLoad(ctx, t, p)
	if err != nil {
		stopSampler()
		return nil, err
	}
	t.logf("battle: %d players, %.0f actions/s, batch %d", p.Players, p.Rate, p.Batch)
	if tm.Warmup > 0 {
		measure(ctx, t, l, "warmup", tm.Warmup)
	}
	m := measure(ctx, t, l, "battle", tm.Duration)
	stop()
	m.into(r, p.Players, p.Observers)
	r.Counts["unsent_at_end"] = l.unsent.Load()
	r.Procs = stopSampler()
	observerErrors(l, r)
	r.Figures["offered_per_s"] = p.Rate
	return r, ctx.Err()
}

// SpectatorParams size the spectator influx.
type SpectatorParams struct {
	Spectators int           // followers joining
	Ramp       time.Duration // they join evenly over this
	// OnFollowers puts spectators on follower nodes only (as relays would
	// serve them); otherwise on every node.
	OnFollowers bool
	// DecodeEvery: one spectator in DecodeEvery reads every event's seq
	// and time (checking there is no gap) and records its delivery
	// latency; the others read the stream raw and count its lines. Real spectators run on their own machines: decoding
	// 1,000 streams here would measure the load generator, which shares
	// the cores with gsd. 0 or 1: all decode.
	DecodeEvery int
	// Linger asks the spectators' streams to gather events for this long
	// between writes (the linger parameter of the event stream): a
	// spectator's delay traded for far fewer writes on the server.
	Linger time.Duration
	// Nodes puts the spectators on the first Nodes of those nodes only
	// (0: all of them). With OnFollowers and Nodes 1, one follower serves
	// every spectator and the other acknowledges the leader's entries
	// undisturbed: what a relay (non-voter) would give, on the same cores.
	Nodes int
}

// nodes returns the nodes spectators join: followers or all, then the
// first Nodes of them.
func (sp SpectatorParams) nodes(all, followers []string) []string {
	nodes := all
	if sp.OnFollowers {
		nodes = followers
	}
	if sp.Nodes > 0 && sp.Nodes < len(nodes) {
		nodes = nodes[:sp.Nodes]
	}
	return nodes
}

// SpectatorInflux runs a battle without spectators, then adds Spectators
// event-stream followers over Ramp, then measures again with all of them
// connected. It reports the players' P99 in both phases and their ratio,
// spectator delivery latency (leader time → received) and bytes per
// spectator.
func SpectatorInflux(ctx context.Context, t *Target, p LoadParams, sp SpectatorParams, tm Timing) (*Result, error) {
	r := newResult("spectator-influx")
	p.into(r)
	tm.into(r)
	r.Params["spectators"] = sp.Spectators
	r.Params["ramp_s"] = sp.Ramp.Seconds()
	r.Params["spectators_on_followers"] = sp.OnFollowers
	r.Params["spectator_decode_every"] = max(sp.DecodeEvery, 1)
	r.Params["spectator_linger_ms"] = sp.Linger.Milliseconds()
	r.Params["spectator_nodes"] = sp.Nodes
	_, stopSampler := t.sampler(ctx)
	defer func() {
		if r.Procs == nil {
			stopSampler()
		}
	}()
	l, stop, err := startLoad(ctx, t, p)
	if err != nil {
		return nil, err
	}
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	addrs, followers, err := t.leaderFirst(ctx)
	if err != nil {
		return nil, err
	}
	nodes := sp.nodes(addrs, followers)
	if tm.Warmup > 0 {
		measure(ctx, t, l, "warmup", tm.Warmup)
	}
	base := measure(ctx, t, l, "without", tm.Duration)

	var sbytes ByteCounter
	hc := sbytes.HTTPClient(sp.Spectators)
	var shist atomic.Pointer[Hist]
	shist.Store(NewHist())
	var (
		received atomic.Int64
		joined   atomic.Int64
		serrs    sync.Map
		swg      sync.WaitGroup
	)
	sctx, scancel := context.WithCancel(ctx)
	join := func(i int) {
		defer swg.Done()
		node := nodes[i%len(nodes)]
		joined.Add(1)
		var err error
		if sp.DecodeEvery <= 1 || i%sp.DecodeEvery == 0 {
			err = sampleStream(sctx, hc, node, p.World, sp.Linger, &received, func(t int64) {
				shist.Load().Record(time.Duration(time.Now().UnixNano() - t))
			})
		} else {
			err = countStream(sctx, hc, node, p.World, sp.Linger, &received)
		}
		if sctx.Err() == nil { // a stream ends only with an error
			serrs.Store(i, err)
		}
	}
	l.phase("influx")
	stopBar := t.progress(ctx, "influx", sp.Ramp, func() string {
		return fmt.Sprintf("spectators %5d/%d  %s", joined.Load(), sp.Spectators, l.status())
	})
	rampStart := time.Now()
	for i := 0; i < sp.Spectators && ctx.Err() == nil; i++ {
		if sp.Ramp > 0 {
			if d := time.Until(rampStart.Add(sp.Ramp * time.Duration(i) / time.Duration(sp.Spectators))); d > 0 {
				sleepCtx(ctx, d)
			}
		}
		swg.Add(1)
		go join(i)
	}
	sleepCtx(ctx, time.Until(rampStart.Add(sp.Ramp)))
	stopBar()
	influx := l.phase("with")
	received.Store(0)
	sb0 := sbytes.Total()
	shist.Store(NewHist())
	with := measure(ctx, t, l, "with", tm.Duration)
	sbDelta := sbytes.Total() - sb0
	got := received.Load()
	scancel()
	swg.Wait()
	hc.CloseIdleConnections()
	stop()
	stop = nil
	r.Procs = stopSampler()

	for _, ph := range []struct {
		m    *meter
		name string
	}{{base, "without spectators"}, {influx, "influx"}, {with, "with spectators"}} {
		pr := newResult(ph.name)
		ph.m.into(pr, p.Players, p.Observers)
		r.Phases = append(r.Phases, *pr)
	}
	with.into(r, p.Players, p.Observers)
	r.Latency["spectator"] = shist.Load().Summary()
	b99, w99 := r.Phases[0].Latency["action_commit"].P99, r.Phases[2].Latency["action_commit"].P99
	r.Figures["player_p99_without_ms"] = b99
	r.Figures["player_p99_with_ms"] = w99
	if b99 > 0 {
		r.Figures["p99_ratio"] = w99 / b99
	}
	r.Figures["spectators_connected"] = float64(joined.Load())
	secs := with.end.Sub(with.start).Seconds()
	if sp.Spectators > 0 {
		r.Figures["bytes_per_s_per_spectator"] = float64(sbDelta) / secs / float64(sp.Spectators)
		r.Figures["events_per_s_per_spectator"] = float64(got) / secs / float64(sp.Spectators)
	}
	r.Figures["spectator_events_per_s"] = float64(got) / secs
	nerr := 0
	serrs.Range(func(_, v any) bool {
		if nerr == 0 {
			r.check("spectator streams stayed up", false, fmt.Sprint(v))
		}
		nerr++
		return true
	})
	if nerr == 0 {
		r.check("spectator streams stayed up", true, fmt.Sprintf("%d spectators", sp.Spectators))
	}
	observerErrors(l, r)
	return r, ctx.Err()
}

// ChurnParams size the reconnect storm.
type ChurnParams struct {
	Clients int           // churning clients
	Dwell   time.Duration // mean time connected before dropping
	Offline time.Duration // mean time away before reconnecting
}

// Churn runs a battle while Clients reconnect again and again: each
// connection is a new HTTP client (new TCP connections) that sends one
// action of its own, then resumes the world's event stream at the last seq
// it saw + 1, reads it for a while and drops. The stream is read as raw
// NDJSON (not through the client's de-duplication), so a gap or a repeat
// the server sends is seen and counted.
func Churn(ctx context.Context, t *Target, p LoadParams, cp ChurnParams, tm Timing) (*Result, error) {
	r := newResult("churn")
	p.into(r)
	tm.into(r)
	r.Params["churners"] = cp.Clients
	r.Params["dwell_ms"] = float64(cp.Dwell) / 1e6
	r.Params["offline_ms"] = float64(cp.Offline) / 1e6
	_, stopSampler := t.sampler(ctx)
	l, stop, err := startLoad(ctx, t, p)
	if err != nil {
		stopSampler()
		return nil, err
	}
	addrs := l.c.Addrs()
	if tm.Warmup > 0 {
		measure(ctx, t, l, "warmup", tm.Warmup)
	}
	var (
		reconnects, events, gaps, dups, resumeErrs atomic.Int64
		cbytes                                     ByteCounter
		firstEvent                                 = NewHist()
		actLat                                     = NewHist()
		tally                                      Tally
		wg                                         sync.WaitGroup
		detailMu                                   sync.Mutex
		detail                                     string
	)
	cctx, ccancel := context.WithCancel(ctx)
	for i := 0; i < cp.Clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(p.Seed, uint64(i)+1000))
			var last, seq uint64
			player := "churn" + strconv.Itoa(i)
			for cctx.Err() == nil {
				hc := cbytes.HTTPClient(1) // fresh transport: fresh connections
				c := client.New(addrs, client.WithHTTPClient(hc), client.WithAttemptTimeout(5*time.Second))
				seq++
				t0 := time.Now()
				actx, acancel := context.WithTimeout(cctx, p.RequestTimeout)
				tally.Sent.Add(1)
				ev, err := c.Act(actx, p.World, client.ActionRequest{Player: player, Seq: seq,
					Ops: []wire.Op{client.Incr(player, "hp", 1)}})
				acancel()
				switch {
				case err != nil && cctx.Err() == nil:
					tally.fail(client.Code(err))
				case err == nil:
					tally.Applied.Add(1)
					actLat.Record(time.Since(t0))
					if last == 0 {
						last = ev.Seq // start following at our own event
					}
				}
				reconnects.Add(1)
				dwell := time.Duration(float64(cp.Dwell) * (0.5 + rng.Float64()))
				sctx, scancel := context.WithTimeout(cctx, dwell)
				from := last + 1
				t1 := time.Now()
				first := true
				err = rawFollow(sctx, hc, addrs[rng.IntN(len(addrs))], p.World, from, func(seq uint64, _ int64) {
					if first {
						firstEvent.Record(time.Since(t1))
						first = false
					}
					switch {
					case seq == last+1:
						last = seq
						events.Add(1)
					case seq <= last:
						dups.Add(1)
					default:
						gaps.Add(1)
						detailMu.Lock()
						detail = fmt.Sprintf("%s wanted seq %d, got %d", player, last+1, seq)
						detailMu.Unlock()
						last = seq
					}
				})
				scancel()
				if err != nil && sctx.Err() == nil {
					resumeErrs.Add(1)
					detailMu.Lock()
					detail = err.Error()
					detailMu.Unlock()
				}
				hc.CloseIdleConnections()
				sleepCtx(cctx, time.Duration(float64(cp.Offline)*(0.5+rng.Float64())))
			}
		}()
	}
	m := measure(ctx, t, l, "churn", tm.Duration)
	ccancel()
	wg.Wait()
	stop()
	m.into(r, p.Players, p.Observers)
	r.Procs = stopSampler()
	r.Counts["reconnects"] = reconnects.Load()
	r.Counts["resumed_events"] = events.Load()
	r.Counts["gaps"] = gaps.Load()
	r.Counts["duplicates_in_streams"] = dups.Load()
	r.Counts["resume_errors"] = resumeErrs.Load()
	r.Counts["churner_actions_applied"] = tally.Applied.Load()
	r.Counts["churner_actions_failed"] = tally.Failed.Load()
	r.Figures["reconnects_per_s"] = float64(reconnects.Load()) / r.Seconds
	r.Figures["bytes_per_s_per_churner"] = float64(cbytes.Total()) / r.Seconds / float64(max(cp.Clients, 1))
	r.Latency["resume_first_event"] = firstEvent.Summary()
	r.Latency["churner_action"] = actLat.Summary()
	ok := gaps.Load() == 0 && dups.Load() == 0 && resumeErrs.Load() == 0 && events.Load() > 0
	if detail == "" {
		detail = fmt.Sprintf("%d reconnects, %d events resumed", reconnects.Load(), events.Load())
	}
	r.check("resumed streams without gaps or duplicates", ok, detail)
	observerErrors(l, r)
	return r, ctx.Err()
}

// FailoverParams time the fault.
type FailoverParams struct {
	KillAfter time.Duration // into the measured phase
	Down      time.Duration // how long the killed node stays down (0: not restarted)
	// RecoveryWait bounds how long the load goes on after the measured
	// phase when no write scheduled after the kill has been applied yet
	// (0: 30 s).
	RecoveryWait time.Duration
}

func (fp FailoverParams) recoveryWait() time.Duration {
	if fp.RecoveryWait > 0 {
		return fp.RecoveryWait
	}
	return 30 * time.Second
}

// Failover runs a battle, SIGKILLs the leader KillAfter into it and
// restarts it Down later. It reports the recovery time (kill → first
// applied answer to an action scheduled after the kill), the longest pause
// between applied answers, and checks that every acknowledged event is in
// the world's log at the seq it was acknowledged with (no lost acks).
func Failover(ctx context.Context, t *Target, p LoadParams, fp FailoverParams, tm Timing) (*Result, error) {
	if t.KillLeader == nil {
		return nil, errors.New("loadgen: failover needs a cluster the harness started (no --addr)")
	}
	r := newResult("failover")
	p.into(r)
	tm.into(r)
	r.Params["kill_after_s"] = fp.KillAfter.Seconds()
	r.Params["down_s"] = fp.Down.Seconds()
	_, stopSampler := t.sampler(ctx)
	l, stop, err := startLoad(ctx, t, p)
	if err != nil {
		stopSampler()
		return nil, err
	}
	l.keepAcks = true
	if tm.Warmup > 0 {
		measure(ctx, t, l, "warmup", tm.Warmup)
	}
	var (
		killed  string
		kerr    error
		fwg     sync.WaitGroup
		killAt  time.Time
		restart error
	)
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		sleepCtx(ctx, fp.KillAfter)
		if ctx.Err() != nil {
			return
		}
		l.maxGap.Store(0)
		killAt = time.Now()
		l.killAt.Store(killAt.UnixNano())
		killed, kerr = t.KillLeader(ctx)
		t.logf("failover: killed leader %s", killed)
		if kerr != nil || fp.Down <= 0 {
			return
		}
		sleepCtx(ctx, fp.Down)
		if t.Restart != nil && ctx.Err() == nil {
			restart = t.Restart(ctx, killed)
		}
	}()
	m := measure(ctx, t, l, "failover", tm.Duration)
	fwg.Wait()
	// A slow election (a loaded machine) may outlast the measured phase:
	// the load goes on, unmeasured, until a write scheduled after the kill
	// is applied or RecoveryWait passes, so "not recovered" means it.
	if killed != "" && kerr == nil {
		wctx, wcancel := context.WithTimeout(ctx, fp.recoveryWait())
		for l.firstAfter.Load() == 0 && wctx.Err() == nil {
			sleepCtx(wctx, 10*time.Millisecond)
		}
		wcancel()
	}
	stop()
	m.into(r, p.Players, p.Observers)
	r.Procs = stopSampler()
	if kerr != nil {
		return r, fmt.Errorf("kill leader: %w", kerr)
	}
	if restart != nil {
		r.check("killed node restarted", false, restart.Error())
	}
	r.Params["killed"] = killed
	if fa := l.firstAfter.Load(); fa != 0 {
		r.Figures["recovery_ms"] = float64(fa-killAt.UnixNano()) / 1e6
	} else {
		r.check("writes recovered after the kill", false, "no applied answer to an action scheduled after the kill")
	}
	r.Figures["max_commit_gap_ms"] = float64(l.maxGap.Load()) / 1e6

	vctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lost, checked, err := verifyAcks(vctx, l.c.Addrs(), p.World, l.acks)
	if err != nil {
		r.check("no lost acknowledgements", false, err.Error())
	} else {
		r.check("no lost acknowledgements", lost == 0, fmt.Sprintf("%d acknowledged events checked against the log, %d missing or different", checked, lost))
	}
	r.Counts["acks_checked"] = int64(checked)
	r.Counts["acks_lost"] = int64(lost)
	observerErrors(l, r)
	return r, ctx.Err()
}

// verifyAcks reads the world's feed from the first acknowledged seq to the
// last and counts acknowledgements whose seq holds another action.
func verifyAcks(ctx context.Context, addrs []string, world string, acks []ack) (lost, checked int, err error) {
	if len(acks) == 0 {
		return 0, 0, nil
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i].seq < acks[j].seq })
	c := client.New(addrs, client.WithAttemptTimeout(5*time.Second))
	defer c.Close()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	i := 0
	last := acks[len(acks)-1].seq
	err = c.Follow(fctx, world, acks[0].seq, func(ev wire.Event) error {
		for i < len(acks) && acks[i].seq == ev.Seq {
			if acks[i].player != ev.Player || acks[i].clientSeq != ev.ClientSeq {
				lost++
			}
			checked++
			i++
		}
		if ev.Seq >= last {
			cancel()
		}
		return nil
	})
	if err != nil && fctx.Err() == nil {
		return lost, checked, err
	}
	if ctx.Err() != nil {
		return lost, checked, ctx.Err()
	}
	return lost + len(acks) - i, checked, nil
}

// rawFollow reads a world's NDJSON feed from seq from on addr with hc and
// calls fn with each event's seq and leader time, until ctx ends (nil) or
// the stream fails.
func rawFollow(ctx context.Context, hc interface {
	Do(*http.Request) (*http.Response, error)
}, addr, world string, from uint64, fn func(seq uint64, t int64)) error {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	url := addr + "/v1/worlds/" + world + "/events?from=" + strconv.FormatUint(from, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET events from %d: HTTP %d %s", from, resp.StatusCode, b)
	}
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read events: %w", err)
		}
		var ev struct {
			Seq  uint64 `json:"seq"`
			Time int64  `json:"time"`
			Code string `json:"code"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		if ev.Code != "" {
			return fmt.Errorf("stream ended: %s", ev.Code)
		}
		if ev.Seq != 0 {
			fn(ev.Seq, ev.Time)
		}
	}
}

// openStream opens world's event stream on node (lingering if linger > 0)
// from the next event on; an answer other than 200 is an error.
func openStream(ctx context.Context, hc *http.Client, node, world string, linger time.Duration) (*http.Response, error) {
	if !strings.Contains(node, "://") {
		node = "http://" + node
	}
	u := node + "/v1/worlds/" + url.PathEscape(world) + "/events"
	if linger > 0 {
		u += "?linger=" + url.QueryEscape(linger.String())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("event stream from %s: %s", node, resp.Status)
	}
	return resp, nil
}

// countStream reads world's event stream from node (lingering if linger >
// 0) raw, counting its lines
// (one per event) into n, until ctx ends or the stream fails.
func countStream(ctx context.Context, hc *http.Client, node, world string, linger time.Duration, n *atomic.Int64) error {
	resp, err := openStream(ctx, hc, node, world, linger)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		k, err := resp.Body.Read(buf)
		n.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
		if err != nil {
			return err
		}
	}
}
