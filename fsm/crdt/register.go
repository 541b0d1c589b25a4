package crdt

import (
	"cmp"
	"strings"
)

// LWW is a last-writer-wins register ordered by (Time, Replica).
//
// A write with a larger Time wins; equal times are broken by the larger
// Replica. Valid is false until the first write. For Merge to be
// commutative, a (Time, Replica) pair must identify one write: a replica
// must not write two different values with the same Time.
type LWW[V any] struct {
	Value   V
	Time    int64
	Replica string
	Valid   bool
}

// Set writes v stamped with (time, replica). It applies only if (time,
// replica) is greater than the current stamp, or if r is not Valid yet.
func (r *LWW[V]) Set(v V, time int64, replica string) {
	if r.Valid && cmp.Or(cmp.Compare(time, r.Time), strings.Compare(replica, r.Replica)) <= 0 {
		return
	}
	*r = LWW[V]{Value: v, Time: time, Replica: replica, Valid: true}
}

// Merge folds o into r: o's write replaces r's if o is Valid and its stamp
// is greater (or r is not Valid).
func (r *LWW[V]) Merge(o LWW[V]) {
	if o.Valid {
		r.Set(o.Value, o.Time, o.Replica)
	}
}

// MaxRegister keeps the largest value seen. Valid is false until the first
// Set. Values are compared with cmp.Compare, so a floating-point NaN is
// smaller than every other value and merges stay commutative.
type MaxRegister[V cmp.Ordered] struct {
	Value V
	Valid bool
}

// Set records v and reports whether the value changed, i.e. r was not Valid
// yet or v is greater than the current value.
func (r *MaxRegister[V]) Set(v V) bool {
	if r.Valid && cmp.Compare(v, r.Value) <= 0 {
		return false
	}
	r.Value, r.Valid = v, true
	return true
}

// Merge folds o into r, keeping the larger value; an invalid o changes
// nothing.
func (r *MaxRegister[V]) Merge(o MaxRegister[V]) {
	if o.Valid {
		r.Set(o.Value)
	}
}

// MinRegister keeps the smallest value seen. Valid is false until the first
// Set. Values are compared with cmp.Compare, so a floating-point NaN is
// smaller than every other value and merges stay commutative.
type MinRegister[V cmp.Ordered] struct {
	Value V
	Valid bool
}

// Set records v and reports whether the value changed, i.e. r was not Valid
// yet or v is smaller than the current value.
func (r *MinRegister[V]) Set(v V) bool {
	if r.Valid && cmp.Compare(v, r.Value) >= 0 {
		return false
	}
	r.Value, r.Valid = v, true
	return true
}

// Merge folds o into r, keeping the smaller value; an invalid o changes
// nothing.
func (r *MinRegister[V]) Merge(o MinRegister[V]) {
	if o.Valid {
		r.Set(o.Value)
	}
}
