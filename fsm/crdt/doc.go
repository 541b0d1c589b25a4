// Package crdt provides the conflict-free replicated data types that gsd's
// deterministic game-state machine (package fsm) uses for field policies:
// a positive-negative counter ([PNCounter]), an add-wins observed-remove set
// without tombstones ([ORSet]), a last-writer-wins register ([LWW]) and
// monotonic max/min registers ([MaxRegister], [MinRegister]).
//
// Inside one Raft group the types are not strictly needed for agreement:
// every replica applies the same operations in log order, so a counter is
// just added to and a set is just added to or removed from. The types exist
// because they keep enough extra state (per-replica totals, a version vector
// and the dots of live adds, a (time, replica) stamp) that two regions' copies
// of the same value, each built from its own log, can later be merged with
// Merge into one state that does not depend on the order, grouping or
// repetition of merges.
//
// Everything here is pure and deterministic: no goroutines, no clock, no
// randomness, and no result depends on map iteration order. Methods that
// expose ordered data for encoding ([PNCounter.Replicas], [ORSet.Clock],
// [ORSet.Dots]) sort it; [ORSet.Elements] is explicitly unordered and callers
// sort it. None of the types is safe for concurrent mutation.
package crdt
