package fsm

import (
	"fmt"
	"io"
	"runtime"
	"testing"
)

const (
	benchEntities  = 10_000
	benchPlayers   = 1_000
	benchBatchSize = 250
	benchPool      = 64 // batches per pass; each player sends pool*size/players actions per pass
	benchPerPass   = benchPool * benchBatchSize / benchPlayers
)

func benchRules() Rules {
	return rules(false, map[string]FieldRule{
		"hp":  {Type: KindInt, Policy: PolicyCounter},
		"pos": {Type: KindInt, Policy: PolicyAuthoritative},
	})
}

func benchFSM(b *testing.B) *FSM {
	b.Helper()
	f, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	f.ApplyBatch(1, &Batch{Commands: []Command{cmdWorld("bench", benchRules())}})
	return f
}

// benchBatches builds a pass of single-op actions, alternately incr and set,
// spread over benchEntities entities and benchPlayers players; pass numbers
// the players' seqs so that every pass is new to the idempotency window.
func benchBatches(pass int) []*Batch {
	out := make([]*Batch, benchPool)
	k := 0
	for i := range out {
		cmds := make([]Command, benchBatchSize)
		for j := range cmds {
			player := fmt.Sprintf("player-%04d", k%benchPlayers)
			seq := uint64(pass*benchPerPass + k/benchPlayers + 1)
			entity := fmt.Sprintf("entity-%05d", (k*7919)%benchEntities)
			var o Op
			if k%2 == 0 {
				o = opIncr(entity, "hp", 1)
			} else {
				o = opSet(entity, "pos", Int(int64(k)))
			}
			cmds[j] = cmdAction(act("bench", player, seq, o))
			k++
		}
		out[i] = &Batch{Time: int64(i), Commands: cmds}
	}
	return out
}

func checkBenchResults(b *testing.B, res []Result) {
	if r := res[len(res)-1]; r.Err != nil || r.Duplicate || r.Event.Status != StatusApplied {
		b.Fatalf("benchmark action not applied: %+v", r)
	}
}

// BenchmarkApplySimpleOps applies pre-decoded batches of 250 single-op
// actions (ApplyBatch still encodes each action once for its payload hash).
func BenchmarkApplySimpleOps(b *testing.B) {
	f := benchFSM(b)
	pool := benchBatches(0)
	ops := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%benchPool == 0 {
			for _, bt := range pool { // next pass: move every seq past the last one
				for _, c := range bt.Commands {
					c.Action.Seq += benchPerPass
				}
			}
		}
		bt := pool[i%benchPool]
		checkBenchResults(b, f.ApplyBatch(uint64(i+2), bt))
		ops += len(bt.Commands)
	}
	b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkApplyEncoded applies encoded entries, as Raft does: decoding
// included.
func BenchmarkApplyEncoded(b *testing.B) {
	f := benchFSM(b)
	encode := func(pass int) [][]byte {
		bs := benchBatches(pass)
		out := make([][]byte, len(bs))
		for i, bt := range bs {
			out[i] = EncodeBatch(bt)
		}
		return out
	}
	pool := encode(0)
	var bytes int64
	ops := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%benchPool == 0 {
			b.StopTimer()
			pool = encode(i / benchPool)
			b.StartTimer()
		}
		p := pool[i%benchPool]
		checkBenchResults(b, f.Apply(uint64(i+2), p))
		ops += benchBatchSize
		bytes += int64(len(p))
	}
	b.SetBytes(bytes / int64(max(b.N, 1)))
	b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkSnapshotWrite takes a snapshot of 10k entities (a counter, a
// register and a small set each) and 1k players, and encodes it.
func BenchmarkSnapshotWrite(b *testing.B) {
	f := benchFSM(b)
	for pass := range 2 {
		for i, bt := range benchBatches(pass) {
			f.ApplyBatch(uint64(pass*benchPool+i+2), bt)
		}
	}
	var cmds []Command
	for e := range benchEntities {
		cmds = append(cmds, cmdAction(act("bench", "builder", uint64(e+1),
			opAdd(fmt.Sprintf("entity-%05d", e), "tags", String("a")),
			opAdd(fmt.Sprintf("entity-%05d", e), "tags", String(fmt.Sprint(e%7))),
		)))
	}
	f.ApplyBatch(1<<20, &Batch{Commands: cmds})
	wi, err := f.World("bench")
	if err != nil || wi.Entities != benchEntities || wi.Players != benchPlayers+1 {
		b.Fatalf("unexpected state: %+v %v", wi, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, err := f.Snapshot().WriteTo(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
	}
}

// incrEntries encodes a pass of entries of single-incr actions by
// benchPlayers players on benchEntities entities, as the store's writers
// send them.
func incrEntries(pass int) [][]byte {
	out := make([][]byte, benchPool)
	k := 0
	for i := range out {
		cmds := make([]Command, benchBatchSize)
		for j := range cmds {
			player := fmt.Sprintf("player-%04d", k%benchPlayers)
			seq := uint64(pass*benchPerPass + k/benchPlayers + 1)
			cmds[j] = cmdAction(act("bench", player, seq, opIncr(fmt.Sprintf("entity-%05d", (k*7919)%benchEntities), "hp", 1)))
			k++
		}
		out[i] = EncodeBatch(&Batch{Time: int64(i), Commands: cmds})
	}
	return out
}

// BenchmarkApplyIncrements applies encoded entries of increments by many
// players through Apply, as a replica does, and reports the cost per
// action: allocs/action and B/action are the load-independent figures.
func BenchmarkApplyIncrements(b *testing.B) {
	f := benchFSM(b)
	pool := incrEntries(0)
	var ms0, ms1 runtime.MemStats
	var skipMallocs, skipBytes uint64 // the entries' encoding is not the FSM's
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%benchPool == 0 {
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			pool = incrEntries(i / benchPool)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			skipMallocs += after.Mallocs - ms1.Mallocs
			skipBytes += after.TotalAlloc - ms1.TotalAlloc
			b.StartTimer()
		}
		checkBenchResults(b, f.Apply(uint64(i+2), pool[i%benchPool]))
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	actions := float64(b.N * benchBatchSize)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/actions, "ns/action")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs-skipMallocs)/actions, "allocs/action")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc-skipBytes)/actions, "B/action")
}
