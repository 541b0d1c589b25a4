package store

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gsd-dev/gsd/fsm"
)

// The store-level benchmarks: W writers, each waiting for its own event to
// commit before sending the next, into a 3-replica loopback group with fsync.
// BenchmarkRawRaft runs the same workload on bare hashicorp/raft with a no-op
// FSM, so the ratio survives this noisy machine.
//
//	go test -run '^$' -bench 'Commit|RawRaft' -benchtime 20000x ./store/
//
// Besides events/s and latency each reports the process's CPU (user +
// system, every replica's and the writers') per event and the garbage
// collections per 1,000 events: figures that a machine shared with other
// work changes far less than it changes the rate. The group runs with the
// store's production timeouts, as the store-level suite does (the test
// config's 200 ms elections fire when 10,000 writers saturate the cores).
//
//	go test -run '^$' -bench 'Commit/writers=10000$' -benchtime 300000x -benchmem ./store/

func BenchmarkCommit(b *testing.B) {
	for _, w := range []int{1, 64, 1024, 4096, 10000} {
		b.Run("writers="+strconv.Itoa(w), func(b *testing.B) {
			c := newCluster(b, 3, suiteTimeouts)
			l := c.leader()
			mustCreateWorld(b, l, "bench")
			run(b, w, func(ctx context.Context, writer int, seq uint64) error {
				a := incr("bench", "p"+strconv.Itoa(writer), seq, "e"+strconv.Itoa(writer%1000), "score", 1)
				_, _, err := l.Act(ctx, a)
				return err
			})
		})
	}
}

func BenchmarkRawRaft(b *testing.B) {
	for _, w := range []int{1, 64, 1024, 4096, 10000} {
		b.Run("writers="+strconv.Itoa(w), func(b *testing.B) {
			l := newRawGroup(b, 3)
			payload := fsm.EncodeAction(incr("bench", "p1", 1, "e1", "score", 1))
			run(b, w, func(ctx context.Context, writer int, seq uint64) error {
				return l.Apply(payload, 10*time.Second).Error()
			})
		})
	}
}

// run splits b.N events over w writers and reports events/s and latency.
func run(b *testing.B, w int, op func(ctx context.Context, writer int, seq uint64) error) {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]int64, w)
	var wg sync.WaitGroup
	b.ResetTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gc0, cpu0 := ms.NumGC, processCPU()
	start := time.Now()
	for i := 0; i < w; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(1); next.Add(1) <= int64(b.N); seq++ {
				t0 := time.Now()
				if err := op(ctx, i, seq); err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], int64(time.Since(t0)))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	all := hdrhistogram.New(1, int64(30*time.Second), 3)
	for _, l := range lat {
		for _, v := range l {
			_ = all.RecordValue(v)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(all.ValueAtQuantile(50))/1e6, "p50-ms")
	b.ReportMetric(float64(all.ValueAtQuantile(99))/1e6, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	b.ReportMetric(float64(ms.NumGC-gc0)*1000/float64(b.N), "gc/kevent")
}
