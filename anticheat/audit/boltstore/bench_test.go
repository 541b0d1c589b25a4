package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"go.etcd.io/bbolt"
)

// BenchmarkAppend256 logs a feed read of 256 events per op into a bolt
// file, one transaction each; ns/event is the per-event cost, the fsync
// shared by the batch. noSync leaves durability to the caller (the node
// could write the audit hashes in the archive's transaction).
func BenchmarkAppend256(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		name := "fsync"
		if noSync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			db, err := bbolt.Open(filepath.Join(b.TempDir(), "audit.db"), 0o600, &bbolt.Options{NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			s, err := openTree(db, "arena")
			if err != nil {
				b.Fatal(err)
			}
			l, err := audit.Open("arena", s)
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]*wire.Event, 256)
			seq := uint64(0)
			for b.Loop() {
				for i := range batch {
					seq++
					batch[i] = &wire.Event{World: "arena", Seq: seq, Player: "p1", Priority: "critical", Status: "applied",
						Versions: map[string]map[string]uint64{"p1": {"x": seq}}}
				}
				if err := l.Append(batch...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq), "ns/event")
		})
	}
}
