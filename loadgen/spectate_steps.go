package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RelaySet is the relays a run started: their HTTP addresses, their
// processes (empty when they run inside the load generator) and how to
// stop them.
type RelaySet struct {
	Addrs []string
	Procs []Proc
	Stop  func()
}

// SpectatorStepsParams size a spectator influx measured in steps.
type SpectatorStepsParams struct {
	// Steps are the spectators watching in each measured step, ascending
	// (ParseSteps); the first is the baseline the others are compared
	// with (0: none).
	Steps []int
	// Ramp is the time over which a step's newcomers join, evenly.
	Ramp time.Duration
	// OnFollowers and Nodes choose the nodes spectators (or the relays)
	// follow, as in SpectatorParams.
	OnFollowers bool
	Nodes       int
	// Relays, when set, starts the relays the spectators watch through;
	// without, they watch on the nodes.
	Relays func(ctx context.Context, upstreams []string) (RelaySet, error)
}

// ParseSteps reads a list of spectator counts ("0,1000,10000"): at least
// one, none negative, ascending.
func ParseSteps(s string) ([]int, error) {
	var steps []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("spectator steps %q: %q is not a count", s, f)
		}
		if len(steps) > 0 && n <= steps[len(steps)-1] {
			return nil, fmt.Errorf("spectator steps %q: want them ascending", s)
		}
		steps = append(steps, n)
	}
	return steps, nil
}

// usage is what processes of one kind used over a step: the sum over
// them of CPU (percent of one core), resident memory, and bytes written
// (every write: sockets and files, /proc/PID/io's wchar).
type usage struct {
	Procs          int
	CPUPercent     float64
	RSSMB          float64
	WriteBytesPerS float64
}

// spectatorStep is what one step measured.
type spectatorStep struct {
	Spectators int // asked for
	Watching   int // watching through the measured time
	PlayerP99  float64
	Voters     usage
	Relays     usage
	Loadgen    usage
	// VoterStreamBytesPerS is what the nodes' event and watch streams
	// wrote (their metrics: gsd_http_event_stream_bytes_total and
	// gsd_watch_bytes_total; -1: not scraped).
	VoterStreamBytesPerS float64
	// RelayUpBytesPerS is what the relays received from the voters (their
	// metrics), RelaySentBytesPerS what they sent their viewers.
	RelayUpBytesPerS, RelaySentBytesPerS float64
	// SpectatorBytesPerS is what the spectators received together, and
	// FullStreamBytesPerS what one follower of the full event stream did.
	SpectatorBytesPerS, FullStreamBytesPerS float64
	// Joins is this step's newcomers: their time from the first dial to
	// the first keyframe (waits after refusals included).
	Joins Summary
	// Refused counts the refusals (503, full) the step's joins were
	// answered before they were let in.
	Refused int64
}

// procSnap is one process's counters at an instant.
type procSnap struct {
	cpu   time.Duration
	rssKB int64
	wchar int64
	ok    bool
}

// snapProcs reads procs' counters (a process that cannot be read counts
// as not there).
func snapProcs(procs []Proc) []procSnap {
	s := make([]procSnap, len(procs))
	for i, p := range procs {
		pid := p.PID()
		if pid <= 0 {
			continue
		}
		cpu, rss, err := readProc(pid)
		if err != nil {
			continue
		}
		w, err := readWchar(pid)
		if err != nil {
			continue
		}
		s[i] = procSnap{cpu: cpu, rssKB: rss, wchar: w, ok: true}
	}
	return s
}

// usageOf sums what procs used between two snapshots secs apart (the
// memory: at the second).
func usageOf(a, b []procSnap, secs float64) usage {
	var u usage
	for i := range b {
		if !a[i].ok || !b[i].ok || secs <= 0 {
			continue
		}
		u.Procs++
		u.CPUPercent += 100 * (b[i].cpu - a[i].cpu).Seconds() / secs
		u.RSSMB += float64(b[i].rssKB) / 1024
		u.WriteBytesPerS += float64(b[i].wchar-a[i].wchar) / secs
	}
	return u
}

// streamBytes sums what the nodes' event and watch streams wrote so far
// (-1 when a node's metrics cannot be read).
func streamBytes(ctx context.Context, nodes []string) float64 {
	var sum float64
	for _, a := range nodes {
		for _, name := range []string{"gsd_http_event_stream_bytes_total", "gsd_watch_bytes_total"} {
			v, ok := scrapeMetric(ctx, http.DefaultClient, a, name)
			if !ok {
				return -1
			}
			sum += v
		}
	}
	return sum
}

// readWchar returns the bytes a process wrote so far (/proc/PID/io).
func readWchar(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no wchar in /proc/%d/io", pid)
}

// SpectatorSteps runs a battle and measures it with each step's number of
// spectators watching (the watch route, through the relays when
// sp.Relays is set): the players' P99, what the voters, the relays and
// the load generator used, the bytes per spectator against the full event
// stream's, and the newcomers' time to their first keyframe. Its figures
// compare every step with the first, per 1,000 spectators
// (stepFigures).
func SpectatorSteps(ctx context.Context, t *Target, p LoadParams, sp SpectatorStepsParams, tm Timing) (*Result, error) {
	if len(sp.Steps) == 0 {
		return nil, errors.New("spectator steps: no step")
	}
	r := newResult("spectator-influx")
	p.into(r)
	tm.into(r)
	r.Params["spectator_steps"] = slices.Clone(sp.Steps)
	r.Params["ramp_s"] = sp.Ramp.Seconds()
	r.Params["spectators_on_followers"] = sp.OnFollowers
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
	nodes := SpectatorParams{OnFollowers: sp.OnFollowers, Nodes: sp.Nodes}.nodes(addrs, followers)
	var rs RelaySet
	if sp.Relays != nil {
		if rs, err = sp.Relays(ctx, nodes); err != nil {
			return nil, fmt.Errorf("spectator-influx: start relays: %w", err)
		}
		defer rs.Stop()
		nodes = rs.Addrs
	}
	// The relay processes are sampled beside the voters and the load
	// generator, from their start.
	stopRelaySampler := func() []ProcStat { return nil }
	if len(rs.Procs) > 0 {
		rsamp := NewProcSampler(rs.Procs, time.Second)
		rctx, rcancel := context.WithCancel(ctx)
		go rsamp.Run(rctx)
		stopRelaySampler = func() []ProcStat { rcancel(); rsamp.Wait(); return rsamp.Stats() }
		defer func() {
			if r.Procs == nil {
				stopRelaySampler()
			}
		}()
	}
	if len(nodes) == 0 {
		return nil, errors.New("spectator-influx: no node or relay for the spectators")
	}
	r.Params["relays"] = len(rs.Addrs)
	r.Params["relay_processes"] = len(rs.Procs)

	// One follower of the full event stream, on a node: what a spectator
	// would receive without the watch's coalescing.
	var full ByteCounter
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	var fullEvents atomic.Int64
	fhc := full.HTTPClient(1)
	fdone := make(chan struct{})
	go func() {
		defer close(fdone)
		_ = countStream(fctx, fhc, addrs[len(addrs)-1], p.World, 0, &fullEvents)
	}()
	if tm.Warmup > 0 {
		measure(ctx, t, l, "warmup", tm.Warmup)
	}

	var (
		received atomic.Int64
		watching atomic.Int64
		refused  atomic.Int64
		joinHist atomic.Pointer[Hist]
		serrs    sync.Map
		swg      sync.WaitGroup
	)
	sctx, scancel := context.WithCancel(ctx)
	join := func(i int) {
		defer swg.Done()
		err := watchFrames(sctx, nodes[i%len(nodes)], p.World, &received, func(d time.Duration) {
			joinHist.Load().Record(d)
			watching.Add(1)
		}, func() { refused.Add(1) })
		if sctx.Err() == nil {
			serrs.Store(i, err)
		}
	}
	self := []Proc{Self()}
	var (
		steps []spectatorStep
		last  *meter
	)
	started := 0
	for _, n := range sp.Steps {
		if ctx.Err() != nil {
			break
		}
		joinHist.Store(NewHist())
		refused0 := refused.Load()
		name := fmt.Sprintf("%d spectators", n)
		l.phase("influx to " + name)
		rampStart := time.Now()
		newcomers := n - started
		for k := 0; started < n && ctx.Err() == nil; k++ {
			if sp.Ramp > 0 {
				sleepCtx(ctx, time.Until(rampStart.Add(sp.Ramp*time.Duration(k)/time.Duration(newcomers))))
			}
			swg.Add(1)
			go join(started)
			started++
		}
		sleepCtx(ctx, time.Until(rampStart.Add(sp.Ramp)))
		// The step is measured with its spectators watching: the
		// newcomers' keyframes may still be on their way when the ramp
		// ends (on a loaded machine, or a relay that starts following the
		// world for its first spectator), so wait up to joinGrace for them;
		// one still without its keyframe then is not counted as watching.
		for graceEnd := time.Now().Add(joinGrace); watching.Load() < int64(started) && time.Now().Before(graceEnd) && ctx.Err() == nil; {
			sleepCtx(ctx, 10*time.Millisecond)
		}
		l.phase(name)
		v0, r0, s0 := snapProcs(t.Procs), snapProcs(rs.Procs), snapProcs(self)
		up0, out0 := relayBytes(ctx, rs.Addrs)
		vs0 := streamBytes(ctx, addrs)
		b0, f0 := received.Load(), full.Total()
		w0 := watching.Load()
		m := measure(ctx, t, l, name, tm.Duration)
		last = m
		secs := m.end.Sub(m.start).Seconds()
		v1, r1, s1 := snapProcs(t.Procs), snapProcs(rs.Procs), snapProcs(self)
		up1, out1 := relayBytes(ctx, rs.Addrs)
		vs1 := streamBytes(ctx, addrs)
		st := spectatorStep{VoterStreamBytesPerS: -1, Spectators: n, Watching: int(min(w0, watching.Load())),
			Voters: usageOf(v0, v1, secs), Relays: usageOf(r0, r1, secs), Loadgen: usageOf(s0, s1, secs),
			RelayUpBytesPerS: (up1 - up0) / secs, RelaySentBytesPerS: (out1 - out0) / secs,
			SpectatorBytesPerS: float64(received.Load()-b0) / secs, FullStreamBytesPerS: float64(full.Total()-f0) / secs,
			Joins: joinHist.Load().Summary(), Refused: refused.Load() - refused0}
		if vs0 >= 0 && vs1 >= 0 {
			st.VoterStreamBytesPerS = (vs1 - vs0) / secs
		}
		pr := newResult(name)
		m.into(pr, p.Players, p.Observers)
		st.PlayerP99 = pr.Latency["action_commit"].P99
		stepInto(pr, st)
		r.Phases = append(r.Phases, *pr)
		steps = append(steps, st)
	}
	scancel()
	swg.Wait()
	fcancel()
	fhc.CloseIdleConnections()
	<-fdone
	stop()
	stop = nil
	r.Procs = append(stopSampler(), stopRelaySampler()...)
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	last.into(r, p.Players, p.Observers)
	stepFigures(r, steps)
	nerr := 0
	serrs.Range(func(_, v any) bool {
		if nerr == 0 {
			r.check("spectators' watches stayed up", false, fmt.Sprint(v))
		}
		nerr++
		return true
	})
	if nerr == 0 {
		r.check("spectators' watches stayed up", true, fmt.Sprintf("%d spectators", started))
	}
	top := steps[len(steps)-1]
	r.check("every spectator got a keyframe", top.Watching == top.Spectators,
		fmt.Sprintf("%d of %d watching", top.Watching, top.Spectators))
	observerErrors(l, r)
	return r, nil
}

// joinGrace bounds the wait, after a step's ramp, for its newcomers'
// keyframes before the step is measured.
const joinGrace = 5 * time.Second

// stepInto puts one step's figures on its phase's result.
func stepInto(pr *Result, st spectatorStep) {
	pr.Counts["spectators"] = int64(st.Spectators)
	pr.Counts["spectators_watching"] = int64(st.Watching)
	pr.Counts["voter_processes"] = int64(st.Voters.Procs)
	pr.Counts["relay_processes"] = int64(st.Relays.Procs)
	pr.Counts["spectators_refused"] = st.Refused
	f := pr.Figures
	f["voters_cpu_percent"] = st.Voters.CPUPercent
	f["voters_write_bytes_per_s"] = st.Voters.WriteBytesPerS
	f["voters_rss_mb"] = st.Voters.RSSMB
	if st.VoterStreamBytesPerS >= 0 {
		f["voters_stream_bytes_per_s"] = st.VoterStreamBytesPerS
	}
	f["relays_cpu_percent"] = st.Relays.CPUPercent
	f["relays_rss_mb"] = st.Relays.RSSMB
	f["loadgen_cpu_percent"] = st.Loadgen.CPUPercent
	f["loadgen_rss_mb"] = st.Loadgen.RSSMB
	f["relays_upstream_bytes_per_s"] = st.RelayUpBytesPerS
	f["relays_sent_bytes_per_s"] = st.RelaySentBytesPerS
	f["spectators_bytes_per_s"] = st.SpectatorBytesPerS
	f["full_stream_bytes_per_s"] = st.FullStreamBytesPerS
	if st.Joins.Count > 0 {
		pr.Latency["keyframe_join"] = st.Joins
	}
}

// stepFigures puts on r each step's comparison with the first (the
// baseline), keyed by the step's spectators N:
//
//	player_p99_ms_N, p99_ratio_N         players' P99, and over the baseline's
//	voters_cpu_percent_per_1k_N          the voters' CPU (percent of one core) more than the baseline, per 1,000 spectators
//	voters_write_bytes_per_s_per_1k_N    the voters' bytes written more than the baseline, per 1,000 spectators
//	voters_stream_bytes_per_s_per_1k_N   the bytes the voters' event and watch streams wrote more than the baseline, per 1,000 spectators
//	relays_cpu_percent_per_1k_N          the relays' CPU more than the baseline, per 1,000 spectators
//	relays_rss_mb_per_1k_N               the relays' memory more than the baseline, per 1,000 spectators
//	loadgen_cpu_percent_N                the load generator's CPU
//	bytes_per_s_per_spectator_N          what a spectator received
//	spectator_to_full_stream_N           that over the full event stream's bytes/s
//	keyframe_join_p50_ms_N, _p99_ms_N    this step's newcomers' time to their first keyframe
func stepFigures(r *Result, steps []spectatorStep) {
	if len(steps) == 0 {
		return
	}
	base := steps[0]
	for _, st := range steps {
		k := strconv.Itoa(st.Spectators)
		f := r.Figures
		f["player_p99_ms_"+k] = st.PlayerP99
		if base.PlayerP99 > 0 {
			f["p99_ratio_"+k] = st.PlayerP99 / base.PlayerP99
		}
		f["loadgen_cpu_percent_"+k] = st.Loadgen.CPUPercent
		if st.Watching > 0 {
			per := st.SpectatorBytesPerS / float64(st.Watching)
			f["bytes_per_s_per_spectator_"+k] = per
			if st.FullStreamBytesPerS > 0 {
				f["spectator_to_full_stream_"+k] = per / st.FullStreamBytesPerS
			}
		}
		if st.Joins.Count > 0 {
			f["keyframe_join_p50_ms_"+k] = st.Joins.P50
			f["keyframe_join_p99_ms_"+k] = st.Joins.P99
		}
		more := st.Spectators - base.Spectators
		if more <= 0 {
			continue
		}
		per1k := 1000 / float64(more)
		if st.Voters.Procs > 0 && st.Voters.Procs == base.Voters.Procs {
			f["voters_cpu_percent_per_1k_"+k] = (st.Voters.CPUPercent - base.Voters.CPUPercent) * per1k
			f["voters_write_bytes_per_s_per_1k_"+k] = (st.Voters.WriteBytesPerS - base.Voters.WriteBytesPerS) * per1k
		}
		if st.VoterStreamBytesPerS >= 0 && base.VoterStreamBytesPerS >= 0 {
			f["voters_stream_bytes_per_s_per_1k_"+k] = (st.VoterStreamBytesPerS - base.VoterStreamBytesPerS) * per1k
		}
		if st.Relays.Procs > 0 && st.Relays.Procs == base.Relays.Procs {
			f["relays_cpu_percent_per_1k_"+k] = (st.Relays.CPUPercent - base.Relays.CPUPercent) * per1k
			f["relays_rss_mb_per_1k_"+k] = (st.Relays.RSSMB - base.Relays.RSSMB) * per1k
		}
	}
}

// StepLines describes each spectator step of r in a line (none for a
// result without steps).
func StepLines(r *Result) []string {
	var lines []string
	for _, ph := range r.Phases {
		n, ok := ph.Counts["spectators"]
		if !ok {
			continue
		}
		f := ph.Figures
		line := fmt.Sprintf("[%d spectators, %d watching] player p99 %s ms", n, ph.Counts["spectators_watching"], f2(ph.Latency["action_commit"].P99))
		if ph.Counts["voter_processes"] > 0 {
			line += fmt.Sprintf("  voters cpu %.1f%% rss %.1f MB write %s/s", f["voters_cpu_percent"], f["voters_rss_mb"], byteRate(f["voters_write_bytes_per_s"]))
		} else {
			line += "  voters not sampled"
		}
		if v, ok := f["voters_stream_bytes_per_s"]; ok {
			line += fmt.Sprintf(" streams %s/s", byteRate(v))
		}
		if ph.Counts["relay_processes"] > 0 {
			line += fmt.Sprintf("  relays cpu %.1f%% rss %.1f MB", f["relays_cpu_percent"], f["relays_rss_mb"])
		}
		line += fmt.Sprintf("  loadgen cpu %.1f%% rss %.1f MB", f["loadgen_cpu_percent"], f["loadgen_rss_mb"])
		if w := ph.Counts["spectators_watching"]; w > 0 {
			line += fmt.Sprintf("  per spectator %s/s (full stream %s/s)", byteRate(f["spectators_bytes_per_s"]/float64(w)), byteRate(f["full_stream_bytes_per_s"]))
		}
		if j, ok := ph.Latency["keyframe_join"]; ok {
			line += fmt.Sprintf("  keyframe join p50 %s p99 %s ms", f2(j.P50), f2(j.P99))
		}
		if rf := ph.Counts["spectators_refused"]; rf > 0 {
			line += fmt.Sprintf("  refused %d times (retried after Retry-After)", rf)
		}
		lines = append(lines, line)
	}
	return lines
}

// byteRate prints bytes compactly (B, kB, MB).
func byteRate(b float64) string {
	switch {
	case b >= 1e6:
		return fmt.Sprintf("%.2f MB", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.1f kB", b/1e3)
	}
	return fmt.Sprintf("%.0f B", b)
}
