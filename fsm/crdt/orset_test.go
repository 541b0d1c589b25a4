package crdt

import (
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// sortedElements returns s's elements in ascending order.
func sortedElements(s *ORSet[string]) []string {
	e := s.Elements()
	slices.Sort(e)
	return e
}

// checkORSetInvariants reports a broken internal invariant: every element has
// at least one dot, dots are sorted and distinct, and the clock covers them.
func checkORSetInvariants[E comparable](t interface{ Fatalf(string, ...any) }, s *ORSet[E]) {
	for e, ds := range s.entries {
		if len(ds) == 0 {
			t.Fatalf("element %v has no dots", e)
		}
		for i, d := range ds {
			if i > 0 && compareDots(ds[i-1], d) >= 0 {
				t.Fatalf("dots of %v not strictly sorted: %v", e, ds)
			}
			if d.Counter == 0 || d.Counter > s.clock[d.Replica] {
				t.Fatalf("dot %v of %v not covered by clock %v", d, e, s.clock)
			}
		}
	}
	for r, v := range s.clock {
		if v == 0 {
			t.Fatalf("clock holds zero for %q", r)
		}
	}
}

func TestORSetZeroValueIsReadyToUse(t *testing.T) {
	var s ORSet[string]
	wantEqual(t, s.Len(), 0, "Len")
	wantEqual(t, s.Contains("x"), false, "Contains")
	wantEqual(t, s.Remove("x"), false, "Remove")
	wantEqual(t, s.Elements(), []string{}, "Elements")
	wantEqual(t, s.Clock(), []Dot{}, "Clock")
	wantEqual(t, s.Dots("x"), nil, "Dots")
	wantEqual(t, s.Equal(NewORSet[string]()), true, "Equal(NewORSet)")

	wantEqual(t, s.Add("a", "x"), Dot{"a", 1}, "Add")
	wantEqual(t, s.Contains("x"), true, "Contains after Add")

	var z ORSet[string]
	z.Merge(&s)
	wantEqual(t, z.Equal(&s), true, "zero⊔s == s")
}

func TestORSetAddThenRemoveThenReAdd(t *testing.T) {
	s := NewORSet[string]()
	wantEqual(t, s.Add("a", "x"), Dot{"a", 1}, "first Add")
	wantEqual(t, s.Contains("x"), true, "Contains after Add")
	wantEqual(t, s.Len(), 1, "Len after Add")

	wantEqual(t, s.Remove("x"), true, "Remove of present element")
	wantEqual(t, s.Contains("x"), false, "Contains after Remove")
	wantEqual(t, s.Len(), 0, "Len after Remove")
	wantEqual(t, s.Dots("x"), nil, "Dots after Remove")
	wantEqual(t, s.Clock(), []Dot{{"a", 1}}, "Clock keeps the removed dot")

	wantEqual(t, s.Add("a", "x"), Dot{"a", 2}, "re-Add")
	wantEqual(t, s.Contains("x"), true, "Contains after re-Add")
	wantEqual(t, s.Dots("x"), []Dot{{"a", 2}}, "Dots after re-Add")
	wantEqual(t, s.Clock(), []Dot{{"a", 2}}, "Clock after re-Add")
	checkORSetInvariants(t, s)
}

func TestORSetRemoveOfAbsentElementReportsFalse(t *testing.T) {
	s := NewORSet[string]()
	s.Add("a", "x")
	before := s.Clone()
	wantEqual(t, s.Remove("y"), false, "Remove(y)")
	wantEqual(t, s.Equal(before), true, "state unchanged")

	s.Remove("x")
	wantEqual(t, s.Remove("x"), false, "second Remove(x)")
}

func TestORSetAddReplacesObservedDotsOfElement(t *testing.T) {
	a := NewORSet[string]()
	b := NewORSet[string]()
	a.Add("a", "x")
	b.Add("b", "x")
	a.Merge(b)
	wantEqual(t, a.Dots("x"), []Dot{{"a", 1}, {"b", 1}}, "concurrent adds keep both dots")

	wantEqual(t, a.Add("a", "x"), Dot{"a", 2}, "Add")
	wantEqual(t, a.Dots("x"), []Dot{{"a", 2}}, "Add replaces all observed dots")

	// Merging b again cannot bring back b's superseded dot.
	a.Merge(b)
	wantEqual(t, a.Dots("x"), []Dot{{"a", 2}}, "superseded dot stays gone")
	checkORSetInvariants(t, a)
}

func TestORSetConcurrentAddAndRemoveAddWins(t *testing.T) {
	tests := []struct {
		name    string
		readder string // replica that concurrently adds x again
	}{
		{"same replica re-adds", "a"},
		{"other replica adds", "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adder := NewORSet[string]()
			adder.Add("a", "x")
			remover := adder.Clone()

			remover.Remove("x")
			d := adder.Add(tt.readder, "x")

			ab := adder.Clone()
			ab.Merge(remover)
			ba := remover.Clone()
			ba.Merge(adder)
			for _, m := range []*ORSet[string]{ab, ba} {
				wantEqual(t, m.Contains("x"), true, "x present after merge")
				wantEqual(t, m.Dots("x"), []Dot{d}, "only the concurrent add's dot survives")
				checkORSetInvariants(t, m)
			}
			wantEqual(t, ab.Equal(ba), true, "merge commutes")
		})
	}
}

func TestORSetRemoveOfObservedAddWins(t *testing.T) {
	a := NewORSet[string]()
	a.Add("a", "x")
	a.Add("a", "y")
	b := NewORSet[string]()
	b.Merge(a)
	b.Remove("x")

	a.Merge(b)
	wantEqual(t, sortedElements(a), []string{"y"}, "elements of a after merging b")
	b.Merge(a)
	wantEqual(t, a.Equal(b), true, "a and b converge")
}

func TestORSetMergeDoesNotResurrectRemovedElement(t *testing.T) {
	a := NewORSet[string]()
	a.Add("a", "x")
	stale := a.Clone()
	a.Remove("x")

	a.Merge(stale)
	wantEqual(t, a.Contains("x"), false, "x resurrected from a stale copy")
	stale.Merge(a)
	wantEqual(t, stale.Contains("x"), false, "stale copy learns of the remove")
}

func TestORSetMergeKeepsUnseenDotsFromEitherSide(t *testing.T) {
	a := NewORSet[string]()
	b := NewORSet[string]()
	a.Add("a", "only-a")
	b.Add("b", "only-b")
	a.Add("a", "both")
	b.Merge(a)
	a.Add("a", "late-a")

	a.Merge(b)
	wantEqual(t, sortedElements(a), []string{"both", "late-a", "only-a", "only-b"}, "Elements")
	wantEqual(t, a.Clock(), []Dot{{"a", 3}, {"b", 1}}, "Clock is the pointwise max")
	wantEqual(t, a.Dots("both"), []Dot{{"a", 2}}, "a dot on both sides is kept once")
	checkORSetInvariants(t, a)
}

func TestORSetMergeWithNilOrItselfChangesNothing(t *testing.T) {
	s := NewORSet[string]()
	s.Add("a", "x")
	s.Add("b", "y")
	before := s.Clone()
	s.Merge(nil)
	wantEqual(t, s.Equal(before), true, "Merge(nil)")
	s.Merge(s)
	wantEqual(t, s.Equal(before), true, "Merge(self)")
}

func TestORSetCloneIsDeep(t *testing.T) {
	s := NewORSet[string]()
	s.Add("a", "x")
	s.Add("b", "x")
	c := s.Clone()
	wantEqual(t, c.Equal(s), true, "clone equals original")

	c.Add("a", "x")
	c.Add("c", "y")
	c.Remove("x")
	wantEqual(t, s.Clock(), []Dot{{"a", 1}, {"b", 1}}, "original clock")
	wantEqual(t, s.Dots("x"), []Dot{{"b", 1}}, "original dots")

	var zero ORSet[string]
	zc := zero.Clone()
	zc.Add("a", "x")
	wantEqual(t, zero.Len(), 0, "zero value untouched by its clone")
}

func TestORSetEqualComparesClockAndEntries(t *testing.T) {
	base := func() *ORSet[string] {
		s := NewORSet[string]()
		s.Restore([]Dot{{"a", 3}, {"b", 2}}, map[string][]Dot{"x": {{"a", 1}}, "y": {{"a", 3}, {"b", 2}}})
		return s
	}
	build := func(clock []Dot, entries map[string][]Dot) *ORSet[string] {
		s := NewORSet[string]()
		s.Restore(clock, entries)
		return s
	}
	tests := []struct {
		name  string
		other *ORSet[string]
		want  bool
	}{
		{"same state", base(), true},
		{"clone", base().Clone(), true},
		{"different clock", build([]Dot{{"a", 4}, {"b", 2}}, map[string][]Dot{"x": {{"a", 1}}, "y": {{"a", 3}, {"b", 2}}}), false},
		{"extra clock replica", build([]Dot{{"a", 3}, {"b", 2}, {"c", 1}}, map[string][]Dot{"x": {{"a", 1}}, "y": {{"a", 3}, {"b", 2}}}), false},
		{"fewer elements", build([]Dot{{"a", 3}, {"b", 2}}, map[string][]Dot{"y": {{"a", 3}, {"b", 2}}}), false},
		{"other element", build([]Dot{{"a", 3}, {"b", 2}}, map[string][]Dot{"z": {{"a", 1}}, "y": {{"a", 3}, {"b", 2}}}), false},
		{"other dots", build([]Dot{{"a", 3}, {"b", 2}}, map[string][]Dot{"x": {{"a", 2}}, "y": {{"a", 3}, {"b", 2}}}), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantEqual(t, base().Equal(tt.other), tt.want, "base.Equal(other)")
			if tt.other != nil {
				wantEqual(t, tt.other.Equal(base()), tt.want, "other.Equal(base)")
			}
		})
	}
	wantEqual(t, NewORSet[string]().Equal(nil), true, "empty set equals nil")
}

func TestORSetElementsListsEveryElementOnce(t *testing.T) {
	s := NewORSet[string]()
	for _, e := range []string{"c", "a", "b", "a"} {
		s.Add("r", e)
	}
	wantEqual(t, sortedElements(s), []string{"a", "b", "c"}, "Elements")
	wantEqual(t, s.Len(), 3, "Len")
}

func TestORSetClockAndDotsAreSortedCopies(t *testing.T) {
	s := NewORSet[string]()
	s.Add("c", "x")
	o := NewORSet[string]()
	o.Add("a", "x")
	o.Add("b", "y")
	s.Merge(o)
	wantEqual(t, s.Clock(), []Dot{{"a", 1}, {"b", 1}, {"c", 1}}, "Clock")
	wantEqual(t, s.Dots("x"), []Dot{{"a", 1}, {"c", 1}}, "Dots")

	d := s.Dots("x")
	d[0] = Dot{"z", 9}
	wantEqual(t, s.Dots("x"), []Dot{{"a", 1}, {"c", 1}}, "Dots after mutating the returned slice")
}

func TestORSetRestoreReplacesStateAndNormalises(t *testing.T) {
	s := NewORSet[string]()
	s.Add("old", "gone")

	entries := map[string][]Dot{
		"x":     {{"b", 2}, {"a", 1}, {"b", 2}}, // unsorted with a duplicate
		"y":     {{"c", 5}},                     // beyond the clock: clock is raised
		"empty": {},                             // no dots: not an element
		"zero":  {{"a", 0}},                     // Counter 0 is never produced by Add
	}
	clock := []Dot{{"b", 1}, {"a", 1}, {"b", 3}, {"d", 0}}
	s.Restore(clock, entries)

	wantEqual(t, sortedElements(s), []string{"x", "y"}, "Elements")
	wantEqual(t, s.Clock(), []Dot{{"a", 1}, {"b", 3}, {"c", 5}}, "Clock")
	wantEqual(t, s.Dots("x"), []Dot{{"a", 1}, {"b", 2}}, "Dots(x)")
	wantEqual(t, entries["x"], []Dot{{"b", 2}, {"a", 1}, {"b", 2}}, "caller's slice untouched")
	checkORSetInvariants(t, s)

	entries["y"][0] = Dot{"z", 1}
	wantEqual(t, s.Dots("y"), []Dot{{"c", 5}}, "Restore copied its input")

	wantEqual(t, s.Add("c", "z"), Dot{"c", 6}, "Add continues from the restored clock")
}

// orReplica is one simulated ORSet replica plus the test model's knowledge:
// the ids of all add events in its causal past.
type orReplica struct {
	set   *ORSet[int]
	known map[int]bool
}

// orHistory is the global log of a simulation, used as the test model.
type orHistory struct {
	addElem  []int        // element of add event id
	observed map[int]bool // add ids observed by some remove
	adds     []uint64     // number of adds per replica
}

// newORNetwork returns n simulated replicas whose local operations are random
// adds and removes of small ints, recorded in the returned history.
func newORNetwork(n int) (*network[orReplica], *orHistory) {
	h := &orHistory{observed: map[int]bool{}, adds: make([]uint64, n)}
	elem := rapid.IntRange(0, 4)
	net := &network[orReplica]{
		states: make([]orReplica, n),
		op: func(t *rapid.T, i int, r *orReplica) {
			e := elem.Draw(t, "element")
			if rapid.Bool().Draw(t, "add") {
				d := r.set.Add(replicaName(i), e)
				h.adds[i]++
				if want := (Dot{replicaName(i), h.adds[i]}); d != want {
					t.Fatalf("Add returned %v, want %v", d, want)
				}
				if !r.set.Contains(e) || !slices.Equal(r.set.Dots(e), []Dot{d}) {
					t.Fatalf("after Add(%d): dots %v, want [%v]", e, r.set.Dots(e), d)
				}
				r.known[len(h.addElem)] = true
				h.addElem = append(h.addElem, e)
			} else {
				was := r.set.Contains(e)
				if got := r.set.Remove(e); got != was {
					t.Fatalf("Remove(%d) = %v, Contains was %v", e, got, was)
				}
				if r.set.Contains(e) {
					t.Fatalf("%d still present after Remove", e)
				}
				for id := range r.known {
					if h.addElem[id] == e {
						h.observed[id] = true
					}
				}
			}
			checkORSetInvariants(t, r.set)
		},
		clone: func(r orReplica) orReplica {
			return orReplica{set: r.set.Clone(), known: maps.Clone(r.known)}
		},
		merge: func(dst *orReplica, src orReplica) {
			dst.set.Merge(src.set)
			for id := range src.known {
				dst.known[id] = true
			}
		},
	}
	for i := range net.states {
		net.states[i] = orReplica{set: NewORSet[int](), known: map[int]bool{}}
	}
	return net, h
}

// genORSets draws the states of three replicas after a random history of
// adds, removes and partial gossip, so that the states are mutually
// consistent (as real replicas' states are) without being equal.
func genORSets(t *rapid.T) (a, b, c *ORSet[int]) {
	net, _ := newORNetwork(3)
	net.gossip(t)
	return net.states[0].set, net.states[1].set, net.states[2].set
}

// mergedOR returns a fresh set holding the merge of ss from left to right.
func mergedOR(ss ...*ORSet[int]) *ORSet[int] {
	out := ss[0].Clone()
	for _, s := range ss[1:] {
		out.Merge(s)
	}
	return out
}

func TestORSetMergeIsCommutative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, _ := genORSets(t)
		bBefore := b.Clone()
		ab, ba := mergedOR(a, b), mergedOR(b, a)
		if !ab.Equal(ba) {
			t.Fatalf("a⊔b = %+v, b⊔a = %+v", ab, ba)
		}
		if !b.Equal(bBefore) {
			t.Fatalf("Merge modified its argument")
		}
		checkORSetInvariants(t, ab)
	})
}

func TestORSetMergeIsAssociative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genORSets(t)
		left := mergedOR(mergedOR(a, b), c)
		right := mergedOR(a, mergedOR(b, c))
		if !left.Equal(right) {
			t.Fatalf("(a⊔b)⊔c = %+v, a⊔(b⊔c) = %+v", left, right)
		}
	})
}

func TestORSetMergeIsIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, _ := genORSets(t)
		if aa := mergedOR(a, a.Clone()); !aa.Equal(a) {
			t.Fatalf("a⊔a = %+v, a = %+v", aa, a)
		}
		ab := mergedOR(a, b)
		if abb := mergedOR(ab, b); !abb.Equal(ab) {
			t.Fatalf("(a⊔b)⊔b = %+v, a⊔b = %+v", abb, ab)
		}
	})
}

func TestORSetClockAndDotsRoundTripThroughRestore(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, _, _ := genORSets(t)
		entries := map[int][]Dot{}
		for _, e := range a.Elements() {
			entries[e] = a.Dots(e)
		}
		var r ORSet[int]
		r.Restore(a.Clock(), entries)
		if !r.Equal(a) {
			t.Fatalf("restored %+v, want %+v", &r, a)
		}
	})
}

func TestORSetReplicasConvergeToAddsNotObservedByRemoves(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "replicas")
		net, h := newORNetwork(n)
		net.gossip(t)
		net.settle(t)
		requireConverged(t, net.states, func(a, b orReplica) bool { return a.set.Equal(b.set) })

		// An element is present iff some add of it was not observed by any
		// remove (an add observed by a later add of the same element is
		// also observed by every remove that observed that later add).
		wantSet := map[int]bool{}
		for id, e := range h.addElem {
			if !h.observed[id] {
				wantSet[e] = true
			}
		}
		want := slices.Sorted(maps.Keys(wantSet))
		got := net.states[0].set.Elements()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("converged elements %v, want %v", got, want)
		}

		var wantClock []Dot
		for i, k := range h.adds {
			if k > 0 {
				wantClock = append(wantClock, Dot{replicaName(i), k})
			}
		}
		if got := net.states[0].set.Clock(); !slices.Equal(got, wantClock) {
			t.Fatalf("converged clock %v, want %v", got, wantClock)
		}
		checkORSetInvariants(t, net.states[0].set)
	})
}

func BenchmarkORSetAdd(b *testing.B) {
	replicas := []string{"a", "b", "c", "d"}
	s := NewORSet[int]()
	for i := 0; b.Loop(); i++ {
		s.Add(replicas[i%len(replicas)], i%1024)
	}
}
