package store

import (
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/raft"
)

// BenchmarkReplicaApply is one replica's share of the store-level suite's
// 10,000-writer load without Raft, the network or the writers: entries of
// 500 increments by 10,000 players (each once per pass, in a shuffled
// order, on e<player%1000>.score) go through the adapter's ApplyBatch one
// at a time, as raft hands them over, so the FSM applies them and the feed
// publishes their events and archives them behind (the writer goroutine,
// 50 ms rounds). It reports the process's CPU, allocations and bytes per
// event (the archive's writer included): the replicated path does this on
// every replica, a third of its work.
//
//	go test -run '^$' -bench ReplicaApply -benchtime 2000x ./store/
func BenchmarkReplicaApply(b *testing.B) {
	const players, perEntry = 10_000, 500
	f, err := fsm.New(fsm.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	arch, err := openArchive(filepath.Join(b.TempDir(), "events.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	fd := newFeed(arch, DefaultConfig().TailSize, slog.New(slog.DiscardHandler))
	b.Cleanup(func() { fd.close(); _ = arch.close() })
	a := newFSMAdapter(f, fd)
	index := uint64(1)
	a.ApplyBatch([]*raft.Log{{Type: raft.LogCommand, Index: index, Data: fsm.EncodeBatch(&fsm.Batch{Commands: []fsm.Command{
		{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: "bench"}}}})}})
	names := make([]string, players)
	for i := range names {
		names[i] = "p" + strconv.Itoa(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pass := 0
	// entries returns the next pass: every player's next action.
	entries := func() [][]byte {
		pass++
		order := rng.Perm(players)
		var out [][]byte
		for i := 0; i < players; i += perEntry {
			cmds := make([]fsm.Command, 0, perEntry)
			for _, w := range order[i : i+perEntry] {
				cmds = append(cmds, fsm.Command{Kind: fsm.CmdAction, Action: incr("bench", names[w], uint64(pass), "e"+strconv.Itoa(w%1000), "score", 1)})
			}
			out = append(out, fsm.EncodeBatch(&fsm.Batch{Time: int64(pass), Commands: cmds}))
		}
		return out
	}
	apply := func(data []byte) {
		index++
		res := a.ApplyBatch([]*raft.Log{{Type: raft.LogCommand, Index: index, Data: data}})
		if r := res[0].([]fsm.Result); r[len(r)-1].Event == nil || r[len(r)-1].Event.Status != fsm.StatusApplied {
			b.Fatalf("not applied: %+v", r[len(r)-1])
		}
	}
	for range 2 { // every player exists and has a window
		for _, e := range entries() {
			apply(e)
		}
	}
	pool := entries()
	var ms0, ms1 runtime.MemStats
	var skipAllocs, skipBytes uint64 // building the next pass is not the replica's work
	var skipCPU int64
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU()
	b.ResetTimer()
	for i, n := 0, 0; i < b.N; i, n = i+1, n+1 {
		if n == len(pool) {
			runtime.ReadMemStats(&ms1)
			c := processCPU()
			pool, n = entries(), 0
			skipCPU += int64(processCPU() - c)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			skipAllocs += after.Mallocs - ms1.Mallocs
			skipBytes += after.TotalAlloc - ms1.TotalAlloc
		}
		apply(pool[n])
	}
	if err := fd.waitArchived(index); err != nil {
		b.Fatal(err)
	}
	cpu := int64(processCPU()-cpu0) - skipCPU
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	events := float64(b.N * perEntry)
	b.ReportMetric(float64(cpu)/events, "cpu-ns/event")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs-skipAllocs)/events, "allocs/event")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc-skipBytes)/events, "B/event")
}
