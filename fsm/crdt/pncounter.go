package crdt

import (
	"maps"
	"slices"
)

// PNCounter is a positive-negative counter. Zero value is ready to use.
//
// P and N hold, per replica, the running totals of that replica's increments
// and decrements. A replica only ever grows its own entries, so merging takes
// the per-replica maximum. A missing key means zero. Totals are uint64 and
// wrap, so a replica that adds more than 2^64-1 in one direction over its
// lifetime loses convergence; Value itself uses wrapping int64 arithmetic.
type PNCounter struct {
	P, N map[string]uint64 // per replica totals
}

// Add records delta on behalf of replica. A positive delta grows P[replica],
// a negative one grows N[replica] by its magnitude (math.MinInt64 included);
// a zero delta changes nothing and creates no key.
func (c *PNCounter) Add(replica string, delta int64) {
	switch {
	case delta > 0:
		if c.P == nil {
			c.P = make(map[string]uint64)
		}
		c.P[replica] += uint64(delta)
	case delta < 0:
		if c.N == nil {
			c.N = make(map[string]uint64)
		}
		// Two's complement negation in uint64 is the magnitude, and it is
		// exact for math.MinInt64 (1<<63).
		c.N[replica] += -uint64(delta)
	}
}

// Value returns sum(P) - sum(N) using wrapping arithmetic.
func (c PNCounter) Value() int64 {
	var p, n uint64
	for _, v := range c.P {
		p += v
	}
	for _, v := range c.N {
		n += v
	}
	return int64(p - n)
}

// Merge folds o into c by taking the per-replica maximum of P and of N.
func (c *PNCounter) Merge(o PNCounter) {
	c.P = mergeMax(c.P, o.P)
	c.N = mergeMax(c.N, o.N)
}

// mergeMax raises dst's entries to src's where src is larger, allocating dst
// only when something has to be written.
func mergeMax(dst, src map[string]uint64) map[string]uint64 {
	for r, v := range src {
		if v > dst[r] {
			if dst == nil {
				dst = make(map[string]uint64, len(src))
			}
			dst[r] = v
		}
	}
	return dst
}

// Clone returns a deep copy of c.
func (c PNCounter) Clone() PNCounter {
	return PNCounter{P: maps.Clone(c.P), N: maps.Clone(c.N)}
}

// Equal reports whether c and o hold the same state, treating a missing key
// as zero.
func (c PNCounter) Equal(o PNCounter) bool {
	return equalCounts(c.P, o.P) && equalCounts(c.N, o.N)
}

// equalCounts compares two per-replica maps where a missing key equals zero.
func equalCounts(a, b map[string]uint64) bool {
	for r, v := range a {
		if b[r] != v {
			return false
		}
	}
	for r, v := range b {
		if a[r] != v {
			return false
		}
	}
	return true
}

// Replicas returns the sorted union of the keys of P and N, for deterministic
// encoding. Keys whose P and N are both zero are left out, so two Equal
// counters always report the same replicas.
func (c PNCounter) Replicas() []string {
	out := make([]string, 0, len(c.P)+len(c.N))
	for r, v := range c.P {
		if v != 0 {
			out = append(out, r)
		}
	}
	for r, v := range c.N {
		if v != 0 && c.P[r] == 0 {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}
