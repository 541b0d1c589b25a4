package spectator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// Replay speed of a recorded battle (issue 13: "Replay speed (× real
// time) for a 10-minute, 10,000-player battle"). It runs only when
// GSD_REPLAY_BENCH names the JSON file to write:
//
//	GSD_REPLAY_BENCH=replay.json go test -run TestReplaySpeedOfABattle -timeout 30m -v ./spectator/
//
// GSD_REPLAY_BENCH_PLAYERS (default 10000) and GSD_REPLAY_BENCH_MINUTES
// (default 10) size the battle; GSD_REPLAY_BENCH_PROFILE=prefix writes the
// first run's CPU profile to prefix.cpu, and the allocations of a third
// run like the first to prefix.allocs (go tool pprof -sample_index=alloc_space). The battle is the players-10k mix: every
// player moves once per battle second (a bulk set of x and y) and attacks
// once per ten (a critical action: the target's hp down, its own shots
// up), so 10,000 players for 10 minutes are 6.6 million events. They are
// written through a real single-node store (its Raft log and event
// archive) as fast as it takes them, so their leader times span less than
// the battle's 10 minutes; the replay then reads the archive through the
// store's Subscribe, as the watch route's replay does, and plays it as a
// viewer would: a keyframe at the start, then one Advance per 50 ms of
// battle time (the recorded span cut into minutes × 1,200 steps), and
// again per second of battle time. "× real time" is the battle's minutes
// over the replay's wall time. The replay's CPU is the process's during
// the replay (the writers are done).
// Nothing here asserts a duration; it asserts that the replay reached the
// last event and holds every player.

type replayBenchResult struct {
	Players       int              `json:"players"`
	BattleMinutes float64          `json:"battle_minutes"`
	Events        uint64           `json:"events"`
	WriteSeconds  float64          `json:"write_seconds"`
	Runs          []replayBenchRun `json:"runs"`
}

type replayBenchRun struct {
	StepsPerBattleSecond int     `json:"steps_per_battle_second"`
	Steps                int     `json:"steps"`
	ReplaySeconds        float64 `json:"replay_seconds"`
	ReplayCPU            float64 `json:"replay_cpu_seconds"`
	TimesRealTime        float64 `json:"times_real_time"`
	EventsPerSec         float64 `json:"events_per_second"`
	DeltaBytes           int64   `json:"delta_bytes"`
	DeltaBytesStep       float64 `json:"delta_bytes_per_step"`
	// Allocations during the replay (the process's: the writers are
	// done), per event: counts that depend less on the machine's load.
	Allocs             uint64  `json:"allocs"`
	AllocBytes         uint64  `json:"alloc_bytes"`
	AllocsPerEvent     float64 `json:"allocs_per_event"`
	AllocBytesPerEvent float64 `json:"alloc_bytes_per_event"`
}

func TestReplaySpeedOfABattle(t *testing.T) {
	out := os.Getenv("GSD_REPLAY_BENCH")
	if out == "" {
		t.Skip("set GSD_REPLAY_BENCH=out.json to measure replay speed")
	}
	players := benchEnvInt(t, "GSD_REPLAY_BENCH_PLAYERS", 10000)
	minutes := benchEnvInt(t, "GSD_REPLAY_BENCH_MINUTES", 10)
	seconds := minutes * 60

	st := replayBenchStore(t)
	ctx := context.Background()
	require.NoError(t, st.CreateWorld(ctx, "battle", fsm.Rules{}))

	// Write the battle: W writers, each its players' actions in battle
	// order (a writer waits for each answer, so one player's actions
	// commit in order).
	const writers = 512
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := map[int]uint64{}
			for s := range seconds {
				for p := w; p < players; p += writers {
					id := fmt.Sprintf("p%05d", p)
					seq[p]++
					a := &fsm.Action{World: "battle", Player: id, Seq: seq[p], Priority: fsm.PriorityBulk, Ops: []fsm.Op{
						{Kind: fsm.OpSet, Entity: id, Field: "x", Value: fsm.Int(int64((p*37 + s*7) % 10000))},
						{Kind: fsm.OpSet, Entity: id, Field: "y", Value: fsm.Int(int64((p*91 + s*3) % 10000))}}}
					if _, _, err := st.Act(ctx, a); err != nil {
						errs <- err
						return
					}
					if (p+s)%10 != 0 {
						continue
					}
					seq[p]++
					target := fmt.Sprintf("p%05d", (p+1+s)%players)
					a = &fsm.Action{World: "battle", Player: id, Seq: seq[p], Ops: []fsm.Op{
						{Kind: fsm.OpIncr, Entity: target, Field: "hp", By: -1},
						{Kind: fsm.OpIncr, Entity: id, Field: "shots", By: 1}}}
					if _, _, err := st.Act(ctx, a); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	res := replayBenchResult{Players: players, BattleMinutes: float64(minutes), WriteSeconds: time.Since(start).Seconds()}
	info, err := st.World("battle")
	require.NoError(t, err)
	res.Events = info.Seq
	first, ok := st.Event("battle", 1)
	require.True(t, ok)
	last, ok := st.Event("battle", info.Seq)
	require.True(t, ok)
	t.Logf("wrote %d events in %.1f s (leader time span %s)", res.Events, res.WriteSeconds, time.Duration(last.Time-first.Time))

	// Replay it twice: as a viewer that gets a delta per 50 ms of battle
	// time (20 Hz at 1×), and per second of battle time (what a 20 Hz
	// display shows of a replay at 20×, or a 60 Hz one at 60×).
	prefix := os.Getenv("GSD_REPLAY_BENCH_PROFILE")
	for i, perSec := range []int{20, 1} {
		stop := func() {}
		if prefix != "" && i == 0 {
			stop = replayBenchCPUProfile(t, prefix+".cpu")
		}
		res.Runs = append(res.Runs, replayBattle(t, st, info.Seq, first.Time, last.Time, seconds, perSec, players))
		stop()
	}
	if prefix != "" {
		// Allocations in a run of their own: sampling them all skews a
		// CPU profile.
		stop := replayBenchAllocProfile(t, prefix+".allocs")
		replayBattle(t, st, info.Seq, first.Time, last.Time, seconds, 20, players)
		stop()
	}
	b, err := json.MarshalIndent(res, "", "  ")
	require.NoError(t, err)
	t.Logf("%s", b)
	require.NoError(t, os.WriteFile(out, b, 0o644))
}

// replayBattle replays the battle from its start with a delta per
// 1/perSec of battle time, and checks that it reached the last event and
// holds every player.
func replayBattle(t *testing.T, st *store.Store, lastSeq uint64, from, to int64, seconds, perSec, players int) replayBenchRun {
	ctx := context.Background()
	access, err := NewAccess(fsm.Rules{})
	require.NoError(t, err)
	subscribe := fanout.SubscribeFunc(func(world string, from uint64) (fanout.Subscription, error) {
		return st.Subscribe(world, from)
	})
	run := replayBenchRun{StepsPerBattleSecond: perSec, Steps: seconds * perSec}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := processCPU(t)
	start := time.Now()
	r, err := NewReplay(ReplayConfig{World: "battle", Access: access, Subscribe: subscribe}, View{})
	require.NoError(t, err)
	_, err = r.SeekSeq(ctx, 0)
	require.NoError(t, err)
	span := to - from
	for i := 1; i <= run.Steps; i++ {
		f, err := r.Advance(ctx, time.Unix(0, from+span*int64(i)/int64(run.Steps)))
		require.NoError(t, err)
		if f != nil {
			run.DeltaBytes += int64(len(f.Data))
		}
	}
	run.ReplaySeconds = time.Since(start).Seconds()
	run.ReplayCPU = processCPU(t) - cpu0
	runtime.ReadMemStats(&m1)
	run.Allocs, run.AllocBytes = m1.Mallocs-m0.Mallocs, m1.TotalAlloc-m0.TotalAlloc
	require.Equal(t, lastSeq, r.Seq(), "the replay reached the last event")
	end, err := r.SeekSeq(ctx, lastSeq)
	require.NoError(t, err)
	var k struct {
		Entities map[string]json.RawMessage `json:"entities"`
	}
	require.NoError(t, json.Unmarshal(end.Data, &k))
	require.Len(t, k.Entities, players, "every player is in the replay's last keyframe")
	run.TimesRealTime = float64(seconds) / run.ReplaySeconds
	run.EventsPerSec = float64(lastSeq) / run.ReplaySeconds
	run.DeltaBytesStep = float64(run.DeltaBytes) / float64(run.Steps)
	run.AllocsPerEvent = float64(run.Allocs) / float64(lastSeq)
	run.AllocBytesPerEvent = float64(run.AllocBytes) / float64(lastSeq)
	return run
}

// replayBenchCPUProfile starts a CPU profile to path; the func it returns
// stops it.
func replayBenchCPUProfile(t *testing.T, path string) func() {
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, pprof.StartCPUProfile(f))
	return func() {
		pprof.StopCPUProfile()
		require.NoError(t, f.Close())
	}
}

// replayBenchAllocProfile samples allocations finely from now; the func
// it returns writes them to path (what the process allocated before, at
// the coarse default rate, is a small part).
func replayBenchAllocProfile(t *testing.T, path string) func() {
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 4096
	return func() {
		runtime.GC() // the profile holds what the last GC saw
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, pprof.Lookup("allocs").WriteTo(f, 0))
		require.NoError(t, f.Close())
		runtime.MemProfileRate = rate
	}
}

func benchEnvInt(t testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, name)
	require.Positive(t, n, name)
	return n
}

// processCPU is the process's user and system CPU so far, in seconds.
func processCPU(t testing.TB) float64 {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// replayBenchStore is a single-node store with fsync off (the replay
// reads; how fast the battle was written is not the figure).
func replayBenchStore(t *testing.T) *store.Store {
	cfg := store.DefaultConfig()
	cfg.ID = "n1"
	cfg.Dir = t.TempDir()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	cfg.RaftAddr = addr
	cfg.HTTPAddr = "127.0.0.1:1"
	cfg.Bootstrap = true
	cfg.NoSync = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.New(cfg, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, st.Close(ctx))
	})
	deadline := time.Now().Add(30 * time.Second)
	for !st.LeaderReady() {
		require.True(t, time.Now().Before(deadline), "no leader")
		time.Sleep(10 * time.Millisecond)
	}
	return st
}

// BenchmarkReplayApply is the replay's side of TestReplaySpeedOfABattle
// (its state, touches and deltas; not the store's reads), on the same
// mix in memory: 10,000 players for 10 battle seconds, a delta per 50 ms.
// "encoded": the feed decodes the archive's encoding of the events, 256 a
// batch, as the store's subscription does (each event with strings of
// its own), and the replay reads ahead as from a store; "decoded": the
// events are decoded before the clock starts, so it measures the
// replay's own work, the critical path on two cores (its GC also marks
// the events not given yet, so compare its allocations, not its GC).
// cpu-ns/event is the process's CPU, which a busy machine disturbs less
// than the wall time, but still by tens of percent; instruction counts
// under cachegrind do not depend on the load (the GC's vary by a few
// percent from run to run: compare the spectator functions').
//
//	go test -run X -bench ReplayApply -benchtime 5x -count 3 ./spectator
//	go test -c -o replay.test ./spectator && valgrind --tool=cachegrind \
//	    ./replay.test -test.run X -test.bench ReplayApply/encoded -test.benchtime 2x
func BenchmarkReplayApply(b *testing.B) {
	const players, seconds, perSec = 10000, 10, 20
	evs := battleMix(b, players, seconds)
	access, err := NewAccess(fsm.Rules{})
	require.NoError(b, err)
	ctx := context.Background()
	replay := func(b *testing.B, sub fanout.Subscription) {
		r, err := NewReplay(ReplayConfig{World: "battle", Access: access,
			Subscribe: func(string, uint64) (fanout.Subscription, error) { return sub, nil }}, View{})
		require.NoError(b, err)
		for i := 1; i <= seconds*perSec; i++ {
			if _, err := r.Advance(ctx, time.Unix(0, int64(i)*int64(time.Second)/perSec)); err != nil {
				b.Fatal(err)
			}
		}
		require.Equal(b, uint64(len(evs)), r.Seq())
	}
	report := func(b *testing.B, cpu float64) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(evs)), "ns/event")
		b.ReportMetric(cpu*1e9/float64(b.N)/float64(len(evs)), "cpu-ns/event")
	}
	b.Run("encoded", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := processCPU(b)
		for b.Loop() {
			replay(b, &encodedSub{evs: evs})
		}
		report(b, processCPU(b)-cpu0)
	})
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		var cpu float64
		for b.Loop() {
			b.StopTimer()
			sub := &encodedSub{evs: evs}
			var dec decodedSub
			for len(sub.evs) > 0 {
				batch, err := sub.Next(ctx)
				require.NoError(b, err)
				dec.batches = append(dec.batches, batch)
			}
			runtime.GC()
			cpu0 := processCPU(b)
			b.StartTimer()
			replay(b, &dec)
			cpu += processCPU(b) - cpu0
		}
		report(b, cpu)
	})
}

// decodedSub is a subscription to batches of decoded events; it lets go
// of each batch it gives.
type decodedSub struct {
	batches [][]*fsm.Event
	mu      sync.Mutex
}

func (s *decodedSub) Next(ctx context.Context) ([]*fsm.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := s.batches[0]
	s.batches[0] = nil
	s.batches = s.batches[1:]
	return out, nil
}

// encodedSub is a subscription to events in the archive's encoding: it
// decodes up to 256 a call, and holds no more after the last.
type encodedSub struct {
	evs [][]byte
	mu  sync.Mutex
}

func (s *encodedSub) Next(ctx context.Context) ([]*fsm.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.evs) == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	n := min(256, len(s.evs))
	out := make([]*fsm.Event, n)
	for i, p := range s.evs[:n] {
		ev, err := fsm.DecodeEvent(p)
		if err != nil {
			return nil, err
		}
		out[i] = ev
	}
	s.evs = s.evs[n:]
	return out, nil
}

// battleMix is TestReplaySpeedOfABattle's battle as its events in the
// archive's encoding: each second every player moves (x and y) and one in
// ten attacks (the target's hp down, its own shots up), spread evenly
// over the second.
func battleMix(b *testing.B, players, seconds int) [][]byte {
	var evs [][]byte
	version := map[string]uint64{}
	value := map[string]int64{}
	change := func(entity, field string, op fsm.OpKind, v int64) fsm.Change {
		k := entity + "." + field
		version[k]++
		if op == fsm.OpIncr {
			v += value[k]
		}
		value[k] = v
		return fsm.Change{Entity: entity, Field: field, Op: op, Value: fsm.Int(v), Version: version[k]}
	}
	for s := range seconds {
		var sec []*fsm.Event
		for p := range players {
			id := fmt.Sprintf("p%05d", p)
			sec = append(sec, &fsm.Event{Player: id, Changes: []fsm.Change{
				change(id, "x", fsm.OpSet, int64((p*37+s*7)%10000)), change(id, "y", fsm.OpSet, int64((p*91+s*3)%10000))}})
			if (p+s)%10 == 0 {
				target := fmt.Sprintf("p%05d", (p+1+s)%players)
				sec = append(sec, &fsm.Event{Player: id, Changes: []fsm.Change{
					change(target, "hp", fsm.OpIncr, -1), change(id, "shots", fsm.OpIncr, 1)}})
			}
		}
		for i, ev := range sec {
			ev.World, ev.Seq, ev.Status = "battle", uint64(len(evs)+1), fsm.StatusApplied
			ev.Time = int64(s)*int64(time.Second) + int64(i+1)*int64(time.Second)/int64(len(sec)+1)
			evs = append(evs, fsm.EncodeEvent(ev))
		}
	}
	return evs
}
