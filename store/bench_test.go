package store

import (
	"context"
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

func BenchmarkCommit(b *testing.B) {
	for _, w := range []int{1, 64, 1024, 4096} {
		b.Run("writers="+strconv.Itoa(w), func(b *testing.B) {
			c := newCluster(b, 3, nil)
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
	for _, w := range []int{1, 64, 1024, 4096} {
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
	b.StopTimer()
	all := hdrhistogram.New(1, int64(30*time.Second), 3)
	for _, l := range lat {
		for _, v := range l {
			_ = all.RecordValue(v)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(all.ValueAtQuantile(50))/1e6, "p50-ms")
	b.ReportMetric(float64(all.ValueAtQuantile(99))/1e6, "p99-ms")
}
