package store

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gsd-dev/gsd/fsm"
)

// BenchmarkPlayersMix is the Raft side of gsdctl's players-10k at 1,000
// players, open loop on a three-replica group in this process: a bulk move
// every millisecond and a critical action every tenth (1,000 and 100 per
// second, spread in time as the players' are), each submitted by a caller
// of its own. One op is one millisecond's step. It
// counts what each entry costs whatever the machine's load: log entries
// per 1,000 actions and the process's CPU per action (the three replicas
// together), with BulkPipelineMin 0 (every batch pipelines) and at its
// default; the critical actions' commit P99 is reported, not asserted.
func BenchmarkPlayersMix(b *testing.B) {
	for _, bulkMin := range []int{0, DefaultConfig().Batch.BulkPipelineMin} {
		b.Run("bulkmin="+strconv.Itoa(bulkMin), func(b *testing.B) {
			c := newCluster(b, 3, func(cfg *Config) {
				suiteTimeouts(cfg)
				cfg.Batch.BulkPipelineMin = bulkMin
			})
			l := c.leader()
			mustCreateWorld(b, l, "bench")
			const players, critEvery = 1000, 10
			seqs := make([]uint64, players)
			crit := hdrhistogram.New(1, int64(30*time.Second), 3)
			var mu sync.Mutex
			var wg sync.WaitGroup
			act := func(a *fsm.Action) {
				defer wg.Done()
				t0 := time.Now()
				if _, _, err := l.Act(context.Background(), a); err != nil {
					b.Error(err)
					return
				}
				if a.Priority != fsm.PriorityBulk {
					mu.Lock()
					_ = crit.RecordValue(int64(time.Since(t0)))
					mu.Unlock()
				}
			}
			next := 0
			action := func(prio fsm.Priority) *fsm.Action {
				p := next % players
				next++
				seqs[p]++
				a := incr("bench", "p"+strconv.Itoa(p), seqs[p], "e"+strconv.Itoa(p), "x", 1)
				a.Priority = prio
				return a
			}
			base := batchCounts(l.metrics)
			cpu0 := processCPU()
			b.ResetTimer()
			tick := time.NewTicker(time.Millisecond)
			actions := 0
			for i := range b.N {
				<-tick.C
				if i%critEvery == 0 {
					wg.Add(1)
					go act(action(fsm.PriorityCritical))
					actions++
				}
				wg.Add(1)
				go act(action(fsm.PriorityBulk))
				actions++
			}
			wg.Wait()
			tick.Stop()
			b.StopTimer()
			cpu := processCPU() - cpu0
			bi := batchCounts(l.metrics).minus(base)
			b.ReportMetric(float64(bi.Entries)*1000/float64(actions), "entries/kaction")
			b.ReportMetric(float64(cpu.Microseconds())/float64(actions), "cpu-µs/action")
			b.ReportMetric(float64(crit.ValueAtQuantile(99))/1e6, "crit-p99-ms")
		})
	}
}
