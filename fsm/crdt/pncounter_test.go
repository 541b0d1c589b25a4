package crdt

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

func TestPNCounterZeroValueIsReadyToUse(t *testing.T) {
	var c PNCounter
	wantEqual(t, c.Value(), 0, "Value")
	wantEqual(t, c.Replicas(), []string{}, "Replicas")
	wantEqual(t, c.Equal(PNCounter{}), true, "Equal(zero)")

	c.Add("a", 3)
	wantEqual(t, c.Value(), 3, "Value after Add")
}

func TestPNCounterAddTracksIncrementsAndDecrementsPerReplica(t *testing.T) {
	var c PNCounter
	c.Add("a", 5)
	c.Add("b", -2)
	c.Add("a", -1)
	c.Add("b", 7)
	wantEqual(t, c.P, map[string]uint64{"a": 5, "b": 7}, "P")
	wantEqual(t, c.N, map[string]uint64{"a": 1, "b": 2}, "N")
	wantEqual(t, c.Value(), 9, "Value")
}

func TestPNCounterAddZeroCreatesNoKey(t *testing.T) {
	var c PNCounter
	c.Add("a", 0)
	wantEqual(t, c.P, nil, "P")
	wantEqual(t, c.N, nil, "N")
	wantEqual(t, c.Replicas(), []string{}, "Replicas")
}

func TestPNCounterAddHandlesExtremeDeltasWithWrappingValue(t *testing.T) {
	tests := []struct {
		name   string
		deltas []int64
		want   int64
	}{
		{"min int64", []int64{math.MinInt64}, math.MinInt64},
		{"max int64", []int64{math.MaxInt64}, math.MaxInt64},
		{"min then max", []int64{math.MinInt64, math.MaxInt64}, -1},
		{"max then one wraps", []int64{math.MaxInt64, 1}, math.MinInt64},
		{"min then minus one wraps", []int64{math.MinInt64, -1}, math.MaxInt64},
		{"min on two replicas wraps to zero", []int64{math.MinInt64, 0, math.MinInt64}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c PNCounter
			for i, d := range tt.deltas {
				c.Add(replicaName(i%2), d)
			}
			wantEqual(t, c.Value(), tt.want, "Value")
		})
	}

	var c PNCounter
	c.Add("a", math.MinInt64)
	wantEqual(t, c.N["a"], uint64(1)<<63, "N[a] after Add(MinInt64)")
}

func TestPNCounterMergeTakesPerReplicaMaxNotSum(t *testing.T) {
	var a PNCounter
	a.Add("a", 5)
	a.Add("a", -2)
	b := a.Clone()
	b.Add("a", 3)
	b.Add("b", -4)
	a.Add("c", 1)

	a.Merge(b)
	wantEqual(t, a.P, map[string]uint64{"a": 8, "c": 1}, "P")
	wantEqual(t, a.N, map[string]uint64{"a": 2, "b": 4}, "N")
	wantEqual(t, a.Value(), 8+1-2-4, "Value")

	// Merging again (or merging an older copy) changes nothing.
	a.Merge(b)
	wantEqual(t, a.Value(), 3, "Value after second merge")
}

func TestPNCounterMergeIntoZeroValueAndWithZeroValue(t *testing.T) {
	var src PNCounter
	src.Add("a", 2)
	src.Add("b", -3)

	var dst PNCounter
	dst.Merge(src)
	wantEqual(t, dst.Equal(src), true, "zero⊔src == src")
	wantEqual(t, dst.Value(), -1, "Value")

	var empty PNCounter
	empty.Merge(PNCounter{})
	wantEqual(t, empty.P, nil, "P after merging nothing")
	wantEqual(t, empty.N, nil, "N after merging nothing")

	dst.Merge(dst)
	wantEqual(t, dst.Equal(src), true, "merge with itself is a no-op")
}

func TestPNCounterCloneIsDeep(t *testing.T) {
	var c PNCounter
	c.Add("a", 1)
	c.Add("a", -1)
	d := c.Clone()
	d.Add("a", 10)
	d.Add("a", -10)
	wantEqual(t, c.P["a"], 1, "original P[a]")
	wantEqual(t, c.N["a"], 1, "original N[a]")

	zero := PNCounter{}.Clone()
	wantEqual(t, zero.P, nil, "clone of zero P")
	wantEqual(t, zero.N, nil, "clone of zero N")
}

func TestPNCounterEqualTreatsMissingKeyAsZero(t *testing.T) {
	tests := []struct {
		name string
		a, b PNCounter
		want bool
	}{
		{"both zero", PNCounter{}, PNCounter{}, true},
		{"explicit zero vs missing", PNCounter{P: map[string]uint64{"a": 0}}, PNCounter{}, true},
		{"missing vs explicit zero", PNCounter{}, PNCounter{N: map[string]uint64{"a": 0}}, true},
		{"same values", PNCounter{P: map[string]uint64{"a": 1}}, PNCounter{P: map[string]uint64{"a": 1, "b": 0}}, true},
		{"different P", PNCounter{P: map[string]uint64{"a": 1}}, PNCounter{P: map[string]uint64{"a": 2}}, false},
		{"extra key on the right", PNCounter{P: map[string]uint64{"a": 1}}, PNCounter{P: map[string]uint64{"a": 1, "b": 1}}, false},
		{"extra key on the left", PNCounter{N: map[string]uint64{"b": 1}}, PNCounter{}, false},
		{"same value different side", PNCounter{P: map[string]uint64{"a": 1}}, PNCounter{N: map[string]uint64{"a": 1}}, false},
		{"same Value different state", PNCounter{P: map[string]uint64{"a": 1}}, PNCounter{P: map[string]uint64{"b": 1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantEqual(t, tt.a.Equal(tt.b), tt.want, "a.Equal(b)")
			wantEqual(t, tt.b.Equal(tt.a), tt.want, "b.Equal(a)")
		})
	}
}

func TestPNCounterReplicasIsSortedUnionWithoutZeroEntries(t *testing.T) {
	c := PNCounter{
		P: map[string]uint64{"d": 1, "b": 2, "z": 0, "a": 4},
		N: map[string]uint64{"c": 1, "b": 3, "y": 0, "z": 0},
	}
	wantEqual(t, c.Replicas(), []string{"a", "b", "c", "d"}, "Replicas")
}

// genPNCounter draws an arbitrary counter state, including nil maps and
// explicit zero entries.
func genPNCounter() *rapid.Generator[PNCounter] {
	counts := rapid.OneOf(
		rapid.Just[map[string]uint64](nil),
		rapid.MapOf(rapid.SampledFrom([]string{"a", "b", "c", "d"}), rapid.OneOf(rapid.Uint64Range(0, 10), rapid.Uint64())),
	)
	return rapid.Custom(func(t *rapid.T) PNCounter {
		return PNCounter{P: counts.Draw(t, "P"), N: counts.Draw(t, "N")}
	})
}

// mergedPN returns a fresh counter holding the merge of cs from left to right.
func mergedPN(cs ...PNCounter) PNCounter {
	out := cs[0].Clone()
	for _, c := range cs[1:] {
		out.Merge(c)
	}
	return out
}

func TestPNCounterMergeIsCommutative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genPNCounter().Draw(t, "a"), genPNCounter().Draw(t, "b")
		bBefore := b.Clone()
		ab, ba := mergedPN(a, b), mergedPN(b, a)
		if !ab.Equal(ba) {
			t.Fatalf("a⊔b = %+v, b⊔a = %+v", ab, ba)
		}
		if !b.Equal(bBefore) {
			t.Fatalf("Merge modified its argument")
		}
		for _, r := range ab.Replicas() {
			if ab.P[r] != max(a.P[r], b.P[r]) || ab.N[r] != max(a.N[r], b.N[r]) {
				t.Fatalf("replica %q is not the per-replica max", r)
			}
		}
	})
}

func TestPNCounterMergeIsAssociative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genPNCounter().Draw(t, "a"), genPNCounter().Draw(t, "b"), genPNCounter().Draw(t, "c")
		left := mergedPN(mergedPN(a, b), c)
		right := mergedPN(a, mergedPN(b, c))
		if !left.Equal(right) {
			t.Fatalf("(a⊔b)⊔c = %+v, a⊔(b⊔c) = %+v", left, right)
		}
	})
}

func TestPNCounterMergeIsIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := genPNCounter().Draw(t, "a")
		b := genPNCounter().Draw(t, "b")
		if aa := mergedPN(a, a); !aa.Equal(a) {
			t.Fatalf("a⊔a = %+v, a = %+v", aa, a)
		}
		self := a.Clone()
		self.Merge(self)
		if !self.Equal(a) {
			t.Fatalf("merging a counter with itself changed it")
		}
		ab := mergedPN(a, b)
		if abb := mergedPN(ab, b); !abb.Equal(ab) {
			t.Fatalf("(a⊔b)⊔b = %+v, a⊔b = %+v", abb, ab)
		}
	})
}

func TestPNCounterReplicasConvergeToSumOfAllDeltas(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 5).Draw(t, "replicas")
		// Deltas stay within ±2^56 so that no replica's uint64 total wraps
		// within one run (wrapping is covered by the table tests).
		delta := rapid.OneOf(rapid.Int64Range(-5, 5), rapid.Int64Range(-1<<56, 1<<56))
		var sum int64
		net := &network[PNCounter]{
			states: make([]PNCounter, n),
			op: func(t *rapid.T, i int, c *PNCounter) {
				d := delta.Draw(t, "delta")
				before := c.Value()
				c.Add(replicaName(i), d)
				if got := c.Value(); got != before+d {
					t.Fatalf("Add(%d) moved Value from %d to %d", d, before, got)
				}
				sum += d
			},
			clone: PNCounter.Clone,
			merge: (*PNCounter).Merge,
		}
		net.gossip(t)
		net.settle(t)
		requireConverged(t, net.states, PNCounter.Equal)
		if got := net.states[0].Value(); got != sum {
			t.Fatalf("converged Value = %d, sum of all deltas = %d", got, sum)
		}
	})
}

func BenchmarkPNCounterAdd(b *testing.B) {
	replicas := []string{"a", "b", "c", "d"}
	var c PNCounter
	for i := 0; b.Loop(); i++ {
		c.Add(replicas[i%len(replicas)], int64(i%7)-3)
	}
}
