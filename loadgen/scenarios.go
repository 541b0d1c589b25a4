package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
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
	// Relays, when set, starts relays (issue 13) following upstreams (the
	// nodes the spectators would join) and returns their HTTP addresses:
	// the spectators join those instead, and the result tells the bytes
	// the voters sent the relays apart from what the relays sent the
	// spectators. stop ends them.
	Relays func(ctx context.Context, upstreams []string) (addrs []string, stop func(), err error)
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
	var relays []string
	if sp.Relays != nil {
		var stopRelays func()
		if relays, stopRelays, err = sp.Relays(ctx, nodes); err != nil {
			return nil, fmt.Errorf("spectator-influx: start relays: %w", err)
		}
		defer stopRelays()
		nodes = relays
	}
	r.Params["relays"] = len(relays)
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
	up0, out0 := relayBytes(ctx, relays)
	shist.Store(NewHist())
	with := measure(ctx, t, l, "with", tm.Duration)
	sbDelta := sbytes.Total() - sb0
	up1, out1 := relayBytes(ctx, relays)
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
	if len(relays) > 0 {
		// What the voters sent for spectators (one stream per relay and
		// world) apart from what the relays sent them.
		r.Figures["voter_bytes_per_s_to_relays"] = (up1 - up0) / secs
		r.Figures["relay_bytes_per_s_to_spectators"] = (out1 - out0) / secs
	}
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

// relayBytes sums the relays' bytes received from their upstreams and
// sent to their viewers so far.
func relayBytes(ctx context.Context, relays []string) (up, out float64) {
	for _, a := range relays {
		u, _ := scrapeMetric(ctx, http.DefaultClient, a, "gsd_relay_upstream_bytes_total")
		o, _ := scrapeMetric(ctx, http.DefaultClient, a, "gsd_relay_bytes_sent_total")
		up, out = up+u, out+o
	}
	return up, out
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
