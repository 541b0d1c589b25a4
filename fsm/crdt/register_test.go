package crdt

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestLWWFirstSetAppliesToInvalidRegister(t *testing.T) {
	var r LWW[string]
	r.Set("v", math.MinInt64, "")
	wantEqual(t, r, LWW[string]{Value: "v", Time: math.MinInt64, Replica: "", Valid: true}, "register")
}

func TestLWWSetOrdersByTimeThenReplica(t *testing.T) {
	start := LWW[string]{Value: "start", Time: 10, Replica: "m", Valid: true}
	tests := []struct {
		name    string
		time    int64
		replica string
		applied bool
	}{
		{"later time wins", 11, "a", true},
		{"earlier time loses", 9, "z", false},
		{"tie broken by larger replica", 10, "n", true},
		{"tie lost by smaller replica", 10, "l", false},
		{"identical stamp keeps the current value", 10, "m", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start
			r.Set("new", tt.time, tt.replica)
			want := start
			if tt.applied {
				want = LWW[string]{Value: "new", Time: tt.time, Replica: tt.replica, Valid: true}
			}
			wantEqual(t, r, want, "after Set")

			m := start
			m.Merge(LWW[string]{Value: "new", Time: tt.time, Replica: tt.replica, Valid: true})
			wantEqual(t, m, want, "after Merge")
		})
	}
}

func TestLWWMergeWithInvalidRegisters(t *testing.T) {
	valid := LWW[int]{Value: 7, Time: 3, Replica: "a", Valid: true}

	r := valid
	r.Merge(LWW[int]{})
	wantEqual(t, r, valid, "merging an invalid register changes nothing")

	var z LWW[int]
	z.Merge(valid)
	wantEqual(t, z, valid, "merging into an invalid register copies")

	var zz LWW[int]
	zz.Merge(LWW[int]{})
	wantEqual(t, zz, LWW[int]{}, "invalid⊔invalid stays invalid")
}

func TestMaxRegisterKeepsLargestValue(t *testing.T) {
	var r MaxRegister[int]
	steps := []struct {
		set     int
		changed bool
		want    int
	}{
		{0, true, 0}, // first Set on an invalid register changes it, even to the zero value
		{-5, false, 0},
		{0, false, 0},
		{3, true, 3},
		{2, false, 3},
	}
	for _, s := range steps {
		wantEqual(t, r.Set(s.set), s.changed, fmt.Sprintf("Set(%d)", s.set))
		wantEqual(t, r, MaxRegister[int]{Value: s.want, Valid: true}, fmt.Sprintf("after Set(%d)", s.set))
	}
}

func TestMinRegisterKeepsSmallestValue(t *testing.T) {
	var r MinRegister[int]
	steps := []struct {
		set     int
		changed bool
		want    int
	}{
		{0, true, 0},
		{5, false, 0},
		{0, false, 0},
		{-3, true, -3},
		{-2, false, -3},
	}
	for _, s := range steps {
		wantEqual(t, r.Set(s.set), s.changed, fmt.Sprintf("Set(%d)", s.set))
		wantEqual(t, r, MinRegister[int]{Value: s.want, Valid: true}, fmt.Sprintf("after Set(%d)", s.set))
	}
}

func TestMaxMinRegisterMergeWithInvalidRegisters(t *testing.T) {
	mx := MaxRegister[string]{Value: "b", Valid: true}
	mx.Merge(MaxRegister[string]{Value: "z"}) // Valid=false: ignored despite the larger Value
	wantEqual(t, mx, MaxRegister[string]{Value: "b", Valid: true}, "max ⊔ invalid")
	var mz MaxRegister[string]
	mz.Merge(MaxRegister[string]{Value: "", Valid: true})
	wantEqual(t, mz, MaxRegister[string]{Value: "", Valid: true}, "invalid max ⊔ valid")
	mz.Merge(mx)
	wantEqual(t, mz, mx, "max ⊔ larger")

	mn := MinRegister[string]{Value: "b", Valid: true}
	mn.Merge(MinRegister[string]{Value: "a"}) // Valid=false: ignored despite the smaller Value
	wantEqual(t, mn, MinRegister[string]{Value: "b", Valid: true}, "min ⊔ invalid")
	var nz MinRegister[string]
	nz.Merge(MinRegister[string]{Value: "z", Valid: true})
	wantEqual(t, nz, MinRegister[string]{Value: "z", Valid: true}, "invalid min ⊔ valid")
	nz.Merge(mn)
	wantEqual(t, nz, mn, "min ⊔ smaller")
}

func TestMaxMinRegisterOrderNaNBelowEverything(t *testing.T) {
	nan := math.NaN()

	var mx MaxRegister[float64]
	wantEqual(t, mx.Set(nan), true, "Max.Set(NaN) on invalid")
	wantEqual(t, mx.Set(nan), false, "Max.Set(NaN) again")
	wantEqual(t, mx.Set(math.Inf(-1)), true, "Max.Set(-Inf) over NaN")
	wantEqual(t, mx.Set(nan), false, "Max.Set(NaN) under -Inf")

	var mn MinRegister[float64]
	mn.Set(math.Inf(-1))
	wantEqual(t, mn.Set(nan), true, "Min.Set(NaN) under -Inf")
	wantEqual(t, math.IsNaN(mn.Value), true, "Min keeps NaN")
	wantEqual(t, mn.Set(math.Inf(-1)), false, "Min.Set(-Inf) over NaN")
}

// stampValue is the value written with stamp (time, replica). Deriving the
// value from the stamp models the LWW contract that one stamp is one write.
func stampValue(time int64, replica string) string {
	return fmt.Sprintf("%s@%d", replica, time)
}

// genLWW draws an invalid (zero) register or a valid one whose value is
// determined by its stamp.
func genLWW() *rapid.Generator[LWW[string]] {
	return rapid.Custom(func(t *rapid.T) LWW[string] {
		if !rapid.Bool().Draw(t, "valid") {
			return LWW[string]{}
		}
		time := rapid.Int64Range(-3, 3).Draw(t, "time")
		replica := rapid.SampledFrom([]string{"", "a", "b", "c"}).Draw(t, "replica")
		return LWW[string]{Value: stampValue(time, replica), Time: time, Replica: replica, Valid: true}
	})
}

// genFloat draws floats including the awkward ones: NaN, infinities and
// both zeros.
func genFloat() *rapid.Generator[float64] {
	return rapid.OneOf(
		rapid.Float64(),
		rapid.SampledFrom([]float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), 1, -1}),
	)
}

// genMax draws an invalid (zero) MaxRegister or a valid one.
func genMax() *rapid.Generator[MaxRegister[float64]] {
	return rapid.Custom(func(t *rapid.T) MaxRegister[float64] {
		if !rapid.Bool().Draw(t, "valid") {
			return MaxRegister[float64]{}
		}
		return MaxRegister[float64]{Value: genFloat().Draw(t, "value"), Valid: true}
	})
}

// genMin draws an invalid (zero) MinRegister or a valid one.
func genMin() *rapid.Generator[MinRegister[float64]] {
	return rapid.Custom(func(t *rapid.T) MinRegister[float64] {
		if !rapid.Bool().Draw(t, "valid") {
			return MinRegister[float64]{}
		}
		return MinRegister[float64]{Value: genFloat().Draw(t, "value"), Valid: true}
	})
}

// lawsChecker checks the semilattice laws of a register type whose values
// are copied by assignment.
type lawsChecker[R any] struct {
	gen   *rapid.Generator[R]
	merge func(*R, R)
	equal func(a, b R) bool
}

// merged returns the merge of rs from left to right.
func (l lawsChecker[R]) merged(rs ...R) R {
	out := rs[0]
	for _, r := range rs[1:] {
		l.merge(&out, r)
	}
	return out
}

// run checks commutativity, associativity and idempotence as subtests.
func (l lawsChecker[R]) run(t *testing.T) {
	t.Run("commutative", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			a, b := l.gen.Draw(t, "a"), l.gen.Draw(t, "b")
			if ab, ba := l.merged(a, b), l.merged(b, a); !l.equal(ab, ba) {
				t.Fatalf("a⊔b = %+v, b⊔a = %+v", ab, ba)
			}
		})
	})
	t.Run("associative", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			a, b, c := l.gen.Draw(t, "a"), l.gen.Draw(t, "b"), l.gen.Draw(t, "c")
			left, right := l.merged(l.merged(a, b), c), l.merged(a, l.merged(b, c))
			if !l.equal(left, right) {
				t.Fatalf("(a⊔b)⊔c = %+v, a⊔(b⊔c) = %+v", left, right)
			}
		})
	})
	t.Run("idempotent", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			a, b := l.gen.Draw(t, "a"), l.gen.Draw(t, "b")
			if aa := l.merged(a, a); !l.equal(aa, a) {
				t.Fatalf("a⊔a = %+v, a = %+v", aa, a)
			}
			ab := l.merged(a, b)
			if abb := l.merged(ab, b); !l.equal(abb, ab) {
				t.Fatalf("(a⊔b)⊔b = %+v, a⊔b = %+v", abb, ab)
			}
		})
	})
}

// sameFloat reports whether two floats are the same under cmp.Compare (NaN
// equals NaN; -0 equals +0).
func sameFloat(a, b float64) bool {
	return cmp.Compare(a, b) == 0
}

func TestLWWMergeIsCommutativeAssociativeIdempotent(t *testing.T) {
	lawsChecker[LWW[string]]{
		gen:   genLWW(),
		merge: (*LWW[string]).Merge,
		equal: func(a, b LWW[string]) bool { return a == b },
	}.run(t)
}

func TestMaxRegisterMergeIsCommutativeAssociativeIdempotent(t *testing.T) {
	lawsChecker[MaxRegister[float64]]{
		gen:   genMax(),
		merge: (*MaxRegister[float64]).Merge,
		equal: func(a, b MaxRegister[float64]) bool { return a.Valid == b.Valid && sameFloat(a.Value, b.Value) },
	}.run(t)
}

func TestMinRegisterMergeIsCommutativeAssociativeIdempotent(t *testing.T) {
	lawsChecker[MinRegister[float64]]{
		gen:   genMin(),
		merge: (*MinRegister[float64]).Merge,
		equal: func(a, b MinRegister[float64]) bool { return a.Valid == b.Valid && sameFloat(a.Value, b.Value) },
	}.run(t)
}

// lwwStamp is a write's (time, replica) stamp.
type lwwStamp struct {
	time    int64
	replica string
}

func TestLWWReplicasConvergeToLatestWrite(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "replicas")
		var latest *lwwStamp
		net := &network[LWW[string]]{
			states: make([]LWW[string], n),
			op: func(t *rapid.T, i int, r *LWW[string]) {
				// Small time range: writes often tie on time across replicas.
				s := lwwStamp{rapid.Int64Range(0, 4).Draw(t, "time"), replicaName(i)}
				r.Set(stampValue(s.time, s.replica), s.time, s.replica)
				if cmp.Or(cmp.Compare(r.Time, s.time), cmp.Compare(r.Replica, s.replica)) < 0 {
					t.Fatalf("after Set at %v the register holds older stamp (%d, %q)", s, r.Time, r.Replica)
				}
				if latest == nil || cmp.Or(cmp.Compare(s.time, latest.time), cmp.Compare(s.replica, latest.replica)) > 0 {
					latest = &s
				}
			},
			clone: func(r LWW[string]) LWW[string] { return r },
			merge: (*LWW[string]).Merge,
		}
		net.gossip(t)
		net.settle(t)
		requireConverged(t, net.states, func(a, b LWW[string]) bool { return a == b })

		want := LWW[string]{}
		if latest != nil {
			want = LWW[string]{Value: stampValue(latest.time, latest.replica), Time: latest.time, Replica: latest.replica, Valid: true}
		}
		if got := net.states[0]; got != want {
			t.Fatalf("converged to %+v, want %+v", got, want)
		}
	})
}

func TestMaxMinRegistersConvergeToExtremeOfAllWrites(t *testing.T) {
	// Both registers ride in one simulated state so one history drives both.
	type pair struct {
		max MaxRegister[int]
		min MinRegister[int]
	}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "replicas")
		var all []int
		net := &network[pair]{
			states: make([]pair, n),
			op: func(t *rapid.T, _ int, p *pair) {
				v := rapid.IntRange(-100, 100).Draw(t, "value")
				before := *p
				if got, want := p.max.Set(v), !before.max.Valid || v > before.max.Value; got != want {
					t.Fatalf("Max.Set(%d) on %+v = %v, want %v", v, before.max, got, want)
				}
				if got, want := p.min.Set(v), !before.min.Valid || v < before.min.Value; got != want {
					t.Fatalf("Min.Set(%d) on %+v = %v, want %v", v, before.min, got, want)
				}
				all = append(all, v)
			},
			clone: func(p pair) pair { return p },
			merge: func(dst *pair, src pair) {
				dst.max.Merge(src.max)
				dst.min.Merge(src.min)
			},
		}
		net.gossip(t)
		net.settle(t)
		requireConverged(t, net.states, func(a, b pair) bool { return a == b })

		var want pair
		if len(all) > 0 {
			want = pair{
				max: MaxRegister[int]{Value: slices.Max(all), Valid: true},
				min: MinRegister[int]{Value: slices.Min(all), Valid: true},
			}
		}
		if got := net.states[0]; got != want {
			t.Fatalf("converged to %+v, want %+v", got, want)
		}
	})
}
