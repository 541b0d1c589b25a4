package audit

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/wire"

	"golang.org/x/mod/sumdb/tlog"
)

// The benchmarks' tree: 10^6 leaves, the figure (proof ≤ 1 KB,
// ≥ 50,000 verifications/s per core). Built once per test binary.
const benchLeaves = 1_000_000

var bench struct {
	once sync.Once
	log  *Log
	root tlog.Hash
}

func benchLog(b *testing.B) *Log {
	b.Helper()
	bench.once.Do(func() {
		store := &MemStore{}
		r := &pendingReader{store: store}
		var rec [8]byte
		for n := int64(0); n < benchLeaves; n++ {
			binary.BigEndian.PutUint64(rec[:], uint64(n))
			hs, err := tlog.StoredHashes(n, rec[:], r)
			if err != nil {
				panic(err)
			}
			r.pending = append(r.pending, hs...)
		}
		if err := store.AppendHashes(0, r.pending); err != nil {
			panic(err)
		}
		l, err := Open("bench", store)
		if err != nil {
			panic(err)
		}
		cp, err := l.Checkpoint()
		if err != nil {
			panic(err)
		}
		bench.log, bench.root = l, cp.Root
	})
	return bench.log
}

func leafOf(n int64) tlog.Hash {
	var rec [8]byte
	binary.BigEndian.PutUint64(rec[:], uint64(n))
	return tlog.RecordHash(rec[:])
}

// BenchmarkLogAppend is the per-event cost on the feed: the leaf's
// encoding and hash and the tree update (budget 2 µs).
func BenchmarkLogAppend(b *testing.B) {
	l, err := Open("arena", &MemStore{})
	if err != nil {
		b.Fatal(err)
	}
	evs := events("arena", 64)
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq++
		e := *evs[seq%64]
		e.Seq = seq
		if err := l.Append(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogAppendBatch64 appends the events of a feed read 64 at a
// time: per op is per event.
func BenchmarkLogAppendBatch64(b *testing.B) {
	l, err := Open("arena", &MemStore{})
	if err != nil {
		b.Fatal(err)
	}
	evs := events("arena", 64)
	batch := make([]*wire.Event, 64)
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		for i, e := range evs {
			c := *e
			c.Seq = seq + uint64(i) + 1
			batch[i] = &c
		}
		if err := l.Append(batch...); err != nil {
			b.Fatal(err)
		}
		seq += 64
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq), "ns/event")
}

// BenchmarkInclusionProof1e6 verifies inclusion proofs in a tree of 10^6
// leaves; proof-bytes is the size of one proof.
func BenchmarkInclusionProof1e6(b *testing.B) {
	l := benchLog(b)
	const proofs = 1024
	ps := make([]tlog.RecordProof, proofs)
	for i := range ps {
		p, err := l.ProveInclusion(uint64(i*977%benchLeaves)+1, benchLeaves)
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
	}
	i := 0
	for b.Loop() {
		k := i % proofs
		n := int64(k * 977 % benchLeaves)
		if err := tlog.CheckRecord(ps[k], benchLeaves, bench.root, n, leafOf(n)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(len(ps[0])*tlog.HashSize), "proof-bytes")
}

// BenchmarkConsistencyProof1e6 verifies that a tree of 10^6 leaves extends
// an older one of 600,000.
func BenchmarkConsistencyProof1e6(b *testing.B) {
	l := benchLog(b)
	const old = 600_000
	p, err := l.ProveConsistency(old, benchLeaves)
	if err != nil {
		b.Fatal(err)
	}
	oldRoot, err := tlog.TreeHash(old, l.store)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := tlog.CheckTree(p, benchLeaves, bench.root, old, oldRoot); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p)*tlog.HashSize), "proof-bytes")
}

// BenchmarkProveInclusion1e6 is the server's side: one proof from the
// stored hashes.
func BenchmarkProveInclusion1e6(b *testing.B) {
	l := benchLog(b)
	i := uint64(0)
	for b.Loop() {
		i++
		if _, err := l.ProveInclusion(i*977%benchLeaves+1, benchLeaves); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLeafHash is the leaf's encoding and hash alone.
func BenchmarkLeafHash(b *testing.B) {
	e := events("arena", 1)[0]
	b.ReportAllocs()
	for b.Loop() {
		_ = LeafHash(e)
	}
}

// BenchmarkLeafHashV2 is a salted world's leaf (version 2) and hash,
// its player and entity salted (their HMACs looked up, as the node's
// auditor looks them up in the event's Salted).
func BenchmarkLeafHashV2(b *testing.B) {
	e := events("arena", 1)[0]
	digests := map[string]wire.SaltDigest{
		e.Player:            {Digest: wire.SaltedID(make([]byte, 32), e.Player), Since: 1},
		e.Changes[0].Entity: {Digest: wire.SaltedID(make([]byte, 32), e.Changes[0].Entity), Since: 1},
	}
	salted := wire.SaltedAt(digests, e.Seq)
	b.ReportAllocs()
	for b.Loop() {
		_ = LeafHashV2(e, salted)
	}
}

// BenchmarkErasedSearchBound is the most one event's erased digest search
// costs (erased.go): an event whose actor has no salt, with more digests
// in range than maxErasedTries and none of them its actor's, so that the
// search stops at its bound. short is an event of the test logs (the
// tries bound it), long one of 40,000 strings (the bytes bound it).
func BenchmarkErasedSearchBound(b *testing.B) {
	var salts wire.AuditSalts
	for i := 0; i <= maxErasedTries; i++ {
		d := wire.SaltedID([]byte{byte(i), byte(i >> 8)}, "decoy")
		salts.Erased = append(salts.Erased, wire.AuditErasedSalt{Digest: d[:], Since: 1, Until: 1})
	}
	long := events("arena", 1)[0]
	set := make([]wire.Value, 40_000)
	for i := range set {
		set[i] = wire.String(fmt.Sprintf("name-%05d", i))
	}
	long.Changes = append(long.Changes, wire.Change{Entity: "e9", Field: "names", Op: "add", Set: set, Version: 1})
	for name, e := range map[string]*wire.Event{"short": events("arena", 1)[0], "long": long} {
		b.Run(name, func(b *testing.B) {
			never := func(tlog.Hash) bool { return false }
			b.ReportAllocs()
			for b.Loop() {
				h := newSaltedHasher(&salts)
				if _, status := h.leaf(e, never); status != lineUnchecked {
					b.Fatalf("status %d, want unchecked", status)
				}
			}
		})
	}
}
