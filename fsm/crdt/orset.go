package crdt

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Dot identifies one add event: the replica and that replica's counter.
type Dot struct {
	Replica string
	Counter uint64
}

// compareDots orders dots by (Replica, Counter).
func compareDots(a, b Dot) int {
	return cmp.Or(strings.Compare(a.Replica, b.Replica), cmp.Compare(a.Counter, b.Counter))
}

// ORSet is an add-wins observed-remove set without tombstones (ORSWOT):
// a version vector (clock) plus, per element, the dots of the adds that are still live.
//
// Every dot held in entries is covered by clock (dot.Counter <=
// clock[dot.Replica]); a dot that the clock covers but no entry holds was
// removed (or superseded by a later add of the same element). That is what
// lets Merge tell "removed here" from "not yet seen here" without tombstones:
// when an element is concurrently added on one side and removed on the other,
// the add's dot is unseen by the remover's clock and survives, so adds win.
//
// The zero value is an empty set ready to use; NewORSet is equivalent.
type ORSet[E comparable] struct {
	clock map[string]uint64
	// entries maps each present element to its live dots, sorted by
	// (Replica, Counter) without duplicates and never empty. The slices are
	// never modified in place, only replaced.
	entries map[E][]Dot
}

// NewORSet returns an empty set.
func NewORSet[E comparable]() *ORSet[E] {
	return &ORSet[E]{clock: make(map[string]uint64), entries: make(map[E][]Dot)}
}

// init allocates the maps of a zero-value set.
func (s *ORSet[E]) init() {
	if s.clock == nil {
		s.clock = make(map[string]uint64)
	}
	if s.entries == nil {
		s.entries = make(map[E][]Dot)
	}
}

// Add adds e on behalf of replica and returns the new dot, whose Counter is
// clock[replica]+1. The new dot replaces all dots e had, because this add
// observed them.
func (s *ORSet[E]) Add(replica string, e E) Dot {
	s.init()
	d := Dot{Replica: replica, Counter: s.clock[replica] + 1}
	s.clock[replica] = d.Counter
	s.entries[e] = []Dot{d}
	return d
}

// Remove drops e together with its observed dots and reports whether e was
// present. The clock keeps covering those dots, so a later Merge does not
// resurrect them, while concurrent adds of e that this set has not seen still
// win.
func (s *ORSet[E]) Remove(e E) bool {
	if _, ok := s.entries[e]; !ok {
		return false
	}
	delete(s.entries, e)
	return true
}

// Contains reports whether e is in the set.
func (s *ORSet[E]) Contains(e E) bool {
	_, ok := s.entries[e]
	return ok
}

// Len returns the number of elements in the set.
func (s *ORSet[E]) Len() int {
	return len(s.entries)
}

// Elements returns the elements of the set in no particular order; callers
// that need a deterministic order must sort the result.
func (s *ORSet[E]) Elements() []E {
	out := make([]E, 0, len(s.entries))
	for e := range s.entries {
		out = append(out, e)
	}
	return out
}

// Merge folds o into s with the standard ORSWOT merge. For every element, a
// dot present on both sides is kept; a dot present on one side only is kept
// if the other side's clock has not seen it (dot.Counter >
// other.clock[dot.Replica]), otherwise the other side removed it. Elements
// left without dots are dropped. The clock becomes the pointwise maximum.
// Merge is commutative, associative and idempotent. A nil o, or o == s,
// changes nothing. o is not modified and shares no memory with s afterwards
// that either side would mutate.
func (s *ORSet[E]) Merge(o *ORSet[E]) {
	if o == nil || o == s {
		return
	}
	s.init()
	next := make(map[E][]Dot, max(len(s.entries), len(o.entries)))
	for e, sd := range s.entries {
		if d := mergeDots(sd, s.clock, o.entries[e], o.clock); d != nil {
			next[e] = d
		}
	}
	for e, od := range o.entries {
		if _, done := s.entries[e]; done {
			continue
		}
		if d := mergeDots(nil, s.clock, od, o.clock); d != nil {
			next[e] = d
		}
	}
	s.entries = next
	s.clock = mergeMax(s.clock, o.clock)
}

// mergeDots merge-joins two sorted dot lists: dots in both are kept, dots in
// only one are kept if the other clock has not seen them. It returns a new
// slice, or nil if nothing is left.
func mergeDots(a []Dot, aClock map[string]uint64, b []Dot, bClock map[string]uint64) []Dot {
	var out []Dot
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		c := 0
		switch {
		case j == len(b):
			c = -1
		case i == len(a):
			c = 1
		default:
			c = compareDots(a[i], b[j])
		}
		switch {
		case c < 0:
			if a[i].Counter > bClock[a[i].Replica] {
				out = append(out, a[i])
			}
			i++
		case c > 0:
			if b[j].Counter > aClock[b[j].Replica] {
				out = append(out, b[j])
			}
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// Clone returns a deep copy of s.
func (s *ORSet[E]) Clone() *ORSet[E] {
	c := &ORSet[E]{
		clock:   maps.Clone(s.clock),
		entries: make(map[E][]Dot, len(s.entries)),
	}
	for e, d := range s.entries {
		c.entries[e] = slices.Clone(d)
	}
	return c
}

// Equal reports whether s and o have the same clock (a missing replica
// equals zero) and the same elements with the same dots. A nil o equals an
// empty set with an empty clock.
func (s *ORSet[E]) Equal(o *ORSet[E]) bool {
	if o == nil {
		o = &ORSet[E]{}
	}
	if !equalCounts(s.clock, o.clock) || len(s.entries) != len(o.entries) {
		return false
	}
	for e, sd := range s.entries {
		od, ok := o.entries[e]
		if !ok || !slices.Equal(sd, od) {
			return false
		}
	}
	return true
}

// Clock returns the version vector as dots sorted by Replica, with Counter
// set to the clock value. Replicas that never added anything are absent
// (the clock never holds a zero value).
func (s *ORSet[E]) Clock() []Dot {
	out := make([]Dot, 0, len(s.clock))
	for r, v := range s.clock {
		out = append(out, Dot{Replica: r, Counter: v})
	}
	slices.SortFunc(out, compareDots)
	return out
}

// Dots returns the live dots of e sorted by (Replica, Counter), or nil if e
// is absent. The result is a copy.
func (s *ORSet[E]) Dots(e E) []Dot {
	return slices.Clone(s.entries[e])
}

// Restore replaces the state of s entirely with the given clock and entries,
// as produced by Clock and Dots. The inputs are copied and normalised:
// repeated clock replicas keep their largest value, zero clock values and
// dots with Counter 0 (which no Add produces) are dropped, each element's
// dots are sorted and deduplicated, elements without dots are left out, and
// the clock is raised where needed to cover every dot. A state exported with
// Clock and Dots is restored exactly.
func (s *ORSet[E]) Restore(clock []Dot, entries map[E][]Dot) {
	s.clock = make(map[string]uint64, len(clock))
	s.entries = make(map[E][]Dot, len(entries))
	for _, d := range clock {
		if d.Counter > s.clock[d.Replica] {
			s.clock[d.Replica] = d.Counter
		}
	}
	for e, ds := range entries {
		live := make([]Dot, 0, len(ds))
		for _, d := range ds {
			if d.Counter == 0 {
				continue
			}
			live = append(live, d)
			if d.Counter > s.clock[d.Replica] {
				s.clock[d.Replica] = d.Counter
			}
		}
		if len(live) == 0 {
			continue
		}
		slices.SortFunc(live, compareDots)
		s.entries[e] = slices.Compact(live)
	}
}
