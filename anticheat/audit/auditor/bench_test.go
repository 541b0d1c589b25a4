package auditor

import (
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/boltstore"
	"go.etcd.io/bbolt"
)

// BenchmarkFollowerBatch256 is the follower's work per feed batch of 256
// events (one change each): conversion to the wire form, the tree update
// and the bolt write without fsync, as gsd runs it. ns/event and
// allocs/event are per event (docs/ANTICHEAT.md, "Cost per event").
func BenchmarkFollowerBatch256(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "audit.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st, err := boltstore.NewTrees(db).Open("arena", 0)
	if err != nil {
		b.Fatal(err)
	}
	l, err := audit.Open("arena", st)
	if err != nil {
		b.Fatal(err)
	}
	src := newSource()
	src.add("arena", 256)
	evs := src.events["arena"] // renumbered each round
	var c converter
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, e := range evs {
			n++
			e.Seq = uint64(n)
		}
		if err := l.Append(c.convert(evs)...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}
