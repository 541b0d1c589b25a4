package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// The store-level suite of `make bench`: W closed-loop writers, each waiting
// for its own event before sending the next, for a fixed time, against
//
//	replicated  a 3-replica group over loopback TCP with fsync, through Store.Act
//	single      one node, no replication (fsync on), through Store.Act
//	raw-raft    3 bare hashicorp/raft nodes with a no-op FSM, fed by the
//	            store's own batcher with the same commands (same payloads,
//	            batched the same way)
//
// It runs only when GSD_STORE_BENCH names the JSON file to write:
//
//	GSD_STORE_BENCH=store.json GSD_STORE_BENCH_WRITERS=1,64,1024,4096,10000 \
//	GSD_STORE_BENCH_DURATION=5s go test -run TestStoreLevelSuite -v -timeout 30m ./store/
//
// GSD_STORE_BENCH_OPEN_RATE=100000 makes every run open-loop instead: the
// writers together offer that many events/s, each on its own fixed
// schedule (writer w sends at start + (w/W + k)·W/rate), and a latency is
// measured from the time the event was due, not from when a writer that
// fell behind got to send it (coordinated omission corrected). Such runs
// are named <mode>-open and carry offered_per_s; every send due before the
// end is waited for and counted in the latencies, while events/s counts
// the answers that arrived before the end.
//
// GSD_STORE_BENCH_PIPELINE_MIN=n sets Batch.PipelineMin (replicated,
// single and raw-raft alike; default off).
//
// Nothing here asserts a duration or a rate.

type suiteRun struct {
	Mode       string          `json:"mode"`
	Writers    int             `json:"writers"`
	Events     int64           `json:"events"`
	Errors     int64           `json:"errors"`
	Seconds    float64         `json:"seconds"`
	Rate       float64         `json:"events_per_s"`
	P50        float64         `json:"p50_ms"`
	P99        float64         `json:"p99_ms"`
	P999       float64         `json:"p999_ms"`
	Max        float64         `json:"max_ms"`
	Points     []suitePoint    `json:"points"`
	Batches    *suiteBatchInfo `json:"batches,omitempty"`
	CPUSecs    float64         `json:"process_cpu_s"`
	Replicas   int             `json:"replicas"`
	Offered    float64         `json:"offered_per_s,omitempty"` // open loop only
	Sent       int64           `json:"sent,omitempty"`          // open loop: sends due before the end (events counts those answered before it)
	Late       int64           `json:"late_sends,omitempty"`    // open loop: sends that left over 1 ms after their due time (a writer behind)
	FirstError string          `json:"first_error,omitempty"`
}

type suitePoint struct {
	P  float64 `json:"p"`
	Ms float64 `json:"ms"`
}

type suiteBatchInfo struct {
	Entries   int64   `json:"entries"`
	MeanSize  float64 `json:"mean_actions_per_entry"`
	MeanBytes float64 `json:"mean_bytes_per_entry"`
}

type suiteReport struct {
	Level    string     `json:"level"`
	Command  string     `json:"command"`
	Workload string     `json:"workload"`
	Runs     []suiteRun `json:"runs"`
}

func TestStoreLevelSuite(t *testing.T) {
	out := os.Getenv("GSD_STORE_BENCH")
	if out == "" {
		t.Skip("set GSD_STORE_BENCH=<file.json> to run the store-level benchmark suite")
	}
	writers := []int{1, 64, 1024, 4096, 10000}
	if s := os.Getenv("GSD_STORE_BENCH_WRITERS"); s != "" {
		writers = nil
		for _, f := range strings.Split(s, ",") {
			w, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(t, err)
			writers = append(writers, w)
		}
	}
	dur := 5 * time.Second
	if s := os.Getenv("GSD_STORE_BENCH_DURATION"); s != "" {
		var err error
		dur, err = time.ParseDuration(s)
		require.NoError(t, err)
	}
	modes := []string{"replicated", "single", "raw-raft"}
	if s := os.Getenv("GSD_STORE_BENCH_MODES"); s != "" {
		modes = strings.Split(s, ",")
	}
	var offered float64
	if s := os.Getenv("GSD_STORE_BENCH_OPEN_RATE"); s != "" {
		var err error
		offered, err = strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		require.Positive(t, offered, "GSD_STORE_BENCH_OPEN_RATE is events/s offered by all writers together")
	}
	rep := suiteReport{
		Level: "store (in-process group: batcher + raft + FSM + archive, loopback TCP, fsync on)",
		Command: fmt.Sprintf("GSD_STORE_BENCH=%s GSD_STORE_BENCH_WRITERS=%s GSD_STORE_BENCH_DURATION=%s go test -run TestStoreLevelSuite -v -timeout 30m ./store/",
			out, joinInts(writers), dur),
		Workload: "each writer: incr e<writer%1000>.score by 1 as player p<writer>, next seq after its answer (closed loop)",
	}
	if offered > 0 {
		rep.Command = "GSD_STORE_BENCH_OPEN_RATE=" + strconv.FormatFloat(offered, 'f', -1, 64) + " " + rep.Command
		rep.Workload = fmt.Sprintf("each writer: incr e<writer%%1000>.score by 1 as player p<writer>, next seq on its schedule: %.0f events/s offered by all writers together (open loop; latency from each event's due time)", offered)
	}
	if s := os.Getenv("GSD_STORE_BENCH_PIPELINE_MIN"); s != "" {
		rep.Command = "GSD_STORE_BENCH_PIPELINE_MIN=" + s + " " + rep.Command
	}
	for _, w := range writers {
		for _, mode := range modes {
			var r suiteRun
			t.Run(fmt.Sprintf("%s/writers=%d", mode, w), func(t *testing.T) {
				r = runSuiteMode(t, mode, w, dur, offered)
				t.Logf("%-10s writers=%-5d %9.0f events/s  p50 %7.2fms  p99 %7.2fms  (%d events, %d errors)",
					r.Mode, w, r.Rate, r.P50, r.P99, r.Events, r.Errors)
			})
			rep.Runs = append(rep.Runs, r)
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, b, 0o644))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// runSuiteMode runs one mode with writers writers for dur: closed loop, or
// open loop at offered events/s when offered > 0.
func runSuiteMode(t *testing.T, mode string, writers int, dur time.Duration, offered float64) suiteRun {
	var (
		op      func(ctx context.Context, writer int, seq uint64) error
		batches func() *suiteBatchInfo
		n       int
	)
	world := "bench"
	switch mode {
	case "replicated", "single":
		n = 3
		if mode == "single" {
			n = 1
		}
		// Production timeouts (testConfig's 200 ms elections fire when the
		// writers saturate both cores).
		c := newCluster(t, n, func(cfg *Config) {
			suiteTimeouts(cfg)
			cfg.Batch.PipelineMin = suitePipelineMin(t)
		})
		l := c.leader()
		mustCreateWorld(t, l, world)
		base := batchCounts(l.metrics)
		op = func(ctx context.Context, w int, seq uint64) error {
			_, _, err := l.Act(ctx, incr(world, "p"+strconv.Itoa(w), seq, "e"+strconv.Itoa(w%1000), "score", 1))
			return err
		}
		batches = func() *suiteBatchInfo { return batchCounts(l.metrics).minus(base) }
	case "raw-raft":
		n = 3
		r := newRawGroup(t, n)
		m := newMetrics()
		bc := DefaultConfig().Batch
		bc.PipelineMin = suitePipelineMin(t)
		b := newBatcher(bc, r, 10*time.Second, m)
		t.Cleanup(b.close)
		op = func(ctx context.Context, w int, seq uint64) error {
			a := incr(world, "p"+strconv.Itoa(w), seq, "e"+strconv.Itoa(w%1000), "score", 1)
			size := 32 + 16 + len(a.Ops[0].Entity) + len(a.Ops[0].Field)
			_, err := b.submit(ctx, fsm.Command{Kind: fsm.CmdAction, Action: a}, a.Priority, size)
			return err
		}
		batches = func() *suiteBatchInfo { return batchCounts(m) }
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	run := suiteRun{Mode: mode, Writers: writers, Replicas: n}
	if offered > 0 {
		run.Mode, run.Offered = mode+"-open", offered
	}
	h := newShardedHist()
	var events, errs, sent, late atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		if errs.Add(1) == 1 {
			firstErr.Store(err.Error())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	cpu0 := processCPU()
	start := time.Now()
	// The run ends when ctx does; merging the writers' histograms after
	// that is not part of it.
	var end atomic.Int64
	context.AfterFunc(ctx, func() { end.Store(int64(time.Since(start))) })
	closed := func(w int) {
		for seq := uint64(1); ctx.Err() == nil; seq++ {
			t0 := time.Now()
			if err := op(context.Background(), w, seq); err != nil {
				fail(err)
				time.Sleep(time.Millisecond) // no hot loop on a persistent error
				continue
			}
			if ctx.Err() != nil {
				break // answered after the run ended: not counted
			}
			events.Add(1)
			h.record(w, time.Since(t0))
		}
	}
	// open sends on writer w's schedule: every interval, phase-shifted so
	// the writers' sends spread evenly over each interval.
	interval := time.Duration(float64(writers) / max(offered, 1e-9) * float64(time.Second))
	deadline := start.Add(dur)
	open := func(w int) {
		due := start.Add(interval * time.Duration(w) / time.Duration(writers))
		for seq := uint64(1); due.Before(deadline); seq, due = seq+1, due.Add(interval) {
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			} else if d < -time.Millisecond {
				late.Add(1)
			}
			sent.Add(1)
			err := op(context.Background(), w, seq)
			if err != nil {
				fail(err)
				continue
			}
			h.record(w, time.Since(due))
			if ctx.Err() == nil {
				events.Add(1)
			}
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if offered > 0 {
				open(w)
			} else {
				closed(w)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if e := time.Duration(end.Load()); e > 0 {
		el = e
	}
	run.CPUSecs = (processCPU() - cpu0).Seconds()
	hist := h.merged()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	run.Events, run.Errors, run.Seconds, run.Sent, run.Late = events.Load(), errs.Load(), el.Seconds(), sent.Load(), late.Load()
	run.Rate = float64(run.Events) / el.Seconds()
	run.P50, run.P99, run.P999, run.Max = ms(hist.ValueAtQuantile(50)), ms(hist.ValueAtQuantile(99)), ms(hist.ValueAtQuantile(99.9)), ms(hist.Max())
	for _, p := range []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100} {
		v := hist.ValueAtQuantile(p)
		if p == 0 {
			v = hist.Min()
		}
		run.Points = append(run.Points, suitePoint{P: p, Ms: ms(v)})
	}
	run.Batches = batches()
	if e, ok := firstErr.Load().(string); ok {
		run.FirstError = e
		t.Logf("first error: %s", e)
	}
	return run
}

// histShards is how many histograms the writers share. One per writer
// costs 140 KB each: 1.4 GB at 10,000 writers, whose allocation, cache
// misses and merge were a fifth of the run's CPU and hid the store's own
// figures; one shared histogram would serialize the writers on its lock.
const histShards = 64

// shardedHist is a latency histogram (µs) the writers record into
// concurrently: writer w uses shard w % histShards.
type shardedHist struct {
	shards [histShards]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
		_  [48]byte // keep neighbouring shards' locks off one cache line
	}
}

func newShardedHist() *shardedHist {
	s := &shardedHist{}
	for i := range s.shards {
		s.shards[i].h = newLatencyHist()
	}
	return s
}

// newLatencyHist holds 1 µs to a minute at 3 significant digits.
func newLatencyHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
}

func (s *shardedHist) record(writer int, d time.Duration) {
	sh := &s.shards[writer%histShards]
	sh.mu.Lock()
	_ = sh.h.RecordValue(max(int64(d/time.Microsecond), 1))
	sh.mu.Unlock()
}

// merged returns one histogram of every shard's values; call it once the
// writers are done.
func (s *shardedHist) merged() *hdrhistogram.Histogram {
	all := newLatencyHist()
	for i := range s.shards {
		all.Merge(s.shards[i].h)
	}
	return all
}

// suitePipelineMin is GSD_STORE_BENCH_PIPELINE_MIN (Batch.PipelineMin),
// else the default.
func suitePipelineMin(t *testing.T) int {
	s := os.Getenv("GSD_STORE_BENCH_PIPELINE_MIN")
	if s == "" {
		return DefaultConfig().Batch.PipelineMin
	}
	v, err := strconv.Atoi(s)
	require.NoError(t, err, "GSD_STORE_BENCH_PIPELINE_MIN")
	return v
}

// suiteTimeouts sets the store's default (production) Raft timeouts.
func suiteTimeouts(cfg *Config) {
	d := DefaultConfig()
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
	cfg.ApplyTimeout = d.ApplyTimeout
}

// batchCounts reads the batcher's entry-size histograms.
func batchCounts(m *metrics) *suiteBatchInfo {
	n, sum := histCount(m.batchSize)
	_, bsum := histCount(m.batchBytes)
	bi := &suiteBatchInfo{Entries: int64(n)}
	if n > 0 {
		bi.MeanSize = sum / float64(n)
		bi.MeanBytes = bsum / float64(n)
	}
	return bi
}

func histCount(h prometheus.Histogram) (uint64, float64) {
	var m dto.Metric
	_ = h.Write(&m)
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// processCPU is this process's user + system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (b *suiteBatchInfo) minus(o *suiteBatchInfo) *suiteBatchInfo {
	n := b.Entries - o.Entries
	r := &suiteBatchInfo{Entries: n}
	if n > 0 {
		r.MeanSize = (b.MeanSize*float64(b.Entries) - o.MeanSize*float64(o.Entries)) / float64(n)
		r.MeanBytes = (b.MeanBytes*float64(b.Entries) - o.MeanBytes*float64(o.Entries)) / float64(n)
	}
	return r
}

// nopResults answers every batch with empty results, so the batcher
// resolves each proposal without the FSM doing anything.
type nopResults struct{ res []fsm.Result }

func (f nopResults) Apply(*raft.Log) any               { return f.res }
func (nopResults) Snapshot() (raft.FSMSnapshot, error) { return nopSnap{}, nil }
func (nopResults) Restore(r io.ReadCloser) error       { return r.Close() }

// newRawGroup starts n bare raft nodes configured like the store's (bolt
// log with fsync, loopback TCP) and returns the leader.
func newRawGroup(t testing.TB, n int) *raft.Raft {
	base := t.TempDir()
	var (
		nodes   []*raft.Raft
		servers []raft.Server
	)
	f := nopResults{res: make([]fsm.Result, 1<<16)}
	for i := 0; i < n; i++ {
		cfg := testConfig(t, "r"+strconv.Itoa(i), filepath.Join(base, strconv.Itoa(i)))
		suiteTimeouts(&cfg)
		rc := cfg.raftConfig()
		rc.Logger = nil
		rc.LogLevel = "error"
		ls, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(base, strconv.Itoa(i)+".db")})
		require.NoError(t, err)
		tr, err := raft.NewTCPTransport(cfg.RaftAddr, nil, 3, 10*time.Second, io.Discard)
		require.NoError(t, err)
		r, err := raft.NewRaft(rc, f, ls, ls, raft.NewInmemSnapshotStore(), tr)
		require.NoError(t, err)
		nodes = append(nodes, r)
		servers = append(servers, raft.Server{ID: rc.LocalID, Address: tr.LocalAddr()})
		t.Cleanup(func() {
			_ = r.Shutdown().Error()
			tr.CloseStreams()
			_ = tr.Close()
			_ = ls.Close()
		})
	}
	require.NoError(t, nodes[0].BootstrapCluster(raft.Configuration{Servers: servers}).Error())
	var leader *raft.Raft
	require.Eventually(t, func() bool {
		for _, r := range nodes {
			if r.State() == raft.Leader {
				leader = r
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	return leader
}

type nopSnap struct{}

func (nopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnap) Release()                          {}
