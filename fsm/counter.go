package fsm

import (
	"slices"
	"strings"
)

// counter is a counter field's state: crdt.PNCounter's per-replica
// totals of increments (p) and decrements (n), held as a slice sorted by
// replica instead of two maps. A field has one replica in the common case
// (its world's origin; more only after a world moved between regions), so
// an increment is one comparison and two additions where the maps took a
// string hash and a map assignment (mapassign_faststr, about 5% of a
// replica's CPU under increments), and a field holds one small array
// instead of two maps. The law is PNCounter's, and so are the snapshot's
// bytes: add follows PNCounter.Add, replicas whose totals are both zero
// are left out as PNCounter.Replicas leaves them (counter_test.go checks
// both against crdt.PNCounter).
type counter struct {
	reps []replicaCount // sorted by replica, unique
}

// replicaCount is one replica's running totals; they wrap as uint64.
type replicaCount struct {
	replica string
	p, n    uint64
}

// add records delta on behalf of replica, as crdt.PNCounter.Add: a zero
// delta changes nothing and creates no entry.
func (c *counter) add(replica string, delta int64) {
	if delta == 0 {
		return
	}
	r := c.entry(replica)
	if delta > 0 {
		r.p += uint64(delta)
	} else {
		r.n += -uint64(delta) // the magnitude, exact for math.MinInt64
	}
}

// entry returns replica's totals, inserting zero totals in order when the
// counter has none yet.
func (c *counter) entry(replica string) *replicaCount {
	if len(c.reps) == 1 && c.reps[0].replica == replica {
		return &c.reps[0] // the common case
	}
	i, ok := slices.BinarySearchFunc(c.reps, replica, func(r replicaCount, s string) int { return strings.Compare(r.replica, s) })
	if !ok {
		c.reps = slices.Insert(c.reps, i, replicaCount{replica: replica})
	}
	return &c.reps[i]
}

// value returns sum(p) - sum(n) using wrapping arithmetic.
func (c *counter) value() int64 {
	var p, n uint64
	for _, r := range c.reps {
		p += r.p
		n += r.n
	}
	return int64(p - n)
}

// clone returns a deep copy of c.
func (c counter) clone() counter { return counter{reps: slices.Clone(c.reps)} }

// restoreCounter returns the counter of a snapshot's (replica, p, n) entries, in
// any order: a replica named twice keeps its last entry, as the maps did.
func restoreCounter(entries []replicaCount) counter {
	slices.SortStableFunc(entries, func(a, b replicaCount) int { return strings.Compare(a.replica, b.replica) })
	out := entries[:0]
	for _, r := range entries {
		if len(out) > 0 && out[len(out)-1].replica == r.replica {
			out[len(out)-1] = r
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return counter{}
	}
	return counter{reps: out}
}

// writeCounter encodes c as crdt.PNCounter's snapshot did: the replicas
// with a nonzero total, sorted, each with its p and n.
func writeCounter(e *encoder, c *counter) {
	n := 0
	for _, r := range c.reps {
		if r.p != 0 || r.n != 0 {
			n++
		}
	}
	e.uvarint(uint64(n))
	for _, r := range c.reps {
		if r.p != 0 || r.n != 0 {
			e.str(r.replica)
			e.uvarint(r.p)
			e.uvarint(r.n)
		}
	}
}

// readCounter decodes what writeCounter wrote (or any order of entries).
func readCounter(d *decoder) counter {
	m := d.count(3)
	entries := make([]replicaCount, 0, m)
	for j := 0; j < m && d.err == nil; j++ {
		entries = append(entries, replicaCount{replica: d.str(), p: d.uvarint(), n: d.uvarint()})
	}
	return restoreCounter(entries)
}
