package crdt

import (
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// wantEqual fails the test unless got and want are deeply equal.
func wantEqual[T any](t testing.TB, got, want T, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %#v, want %#v", what, got, want)
	}
}

// replicaName is the replica identifier used for simulated replica i.
func replicaName(i int) string {
	return string(rune('a' + i))
}

// network simulates replicas of a state-based CRDT that exchange full-state
// snapshots over an unreliable network: messages are delayed, reordered and
// duplicated, but every replica's final state eventually reaches every other
// replica. S may bundle the CRDT with test-model knowledge that merges
// alongside it.
type network[S any] struct {
	states   []S
	op       func(t *rapid.T, i int, s *S) // one random local operation at replica i
	clone    func(S) S
	merge    func(dst *S, src S)
	inflight []message[S]
}

// message is a snapshot of a sender's state addressed to replica to.
type message[S any] struct {
	to    int
	state S
}

// gossip runs a random interleaving of local operations, sends (snapshots
// taken now, delivered later) and deliveries (in any order, sometimes kept
// in flight to be delivered again).
func (n *network[S]) gossip(t *rapid.T) {
	replica := rapid.IntRange(0, len(n.states)-1)
	steps := rapid.IntRange(0, 60).Draw(t, "steps")
	for range steps {
		switch rapid.IntRange(0, 3).Draw(t, "action") {
		case 0, 1:
			i := replica.Draw(t, "op at")
			n.op(t, i, &n.states[i])
		case 2:
			from, to := replica.Draw(t, "send from"), replica.Draw(t, "send to")
			n.inflight = append(n.inflight, message[S]{to: to, state: n.clone(n.states[from])})
		case 3:
			if len(n.inflight) == 0 {
				continue
			}
			k := rapid.IntRange(0, len(n.inflight)-1).Draw(t, "deliver")
			m := n.inflight[k]
			n.merge(&n.states[m.to], m.state)
			if !rapid.Bool().Draw(t, "deliver again later") {
				n.inflight = slices.Delete(n.inflight, k, k+1)
			}
		}
	}
}

// settle sends every replica's current state to every other replica, adds
// random duplicates of all pending messages and delivers everything in a
// random order. Afterwards every replica has merged every other replica's
// final state.
func (n *network[S]) settle(t *rapid.T) {
	for from := range n.states {
		for to := range n.states {
			if from != to {
				n.inflight = append(n.inflight, message[S]{to: to, state: n.clone(n.states[from])})
			}
		}
	}
	if len(n.inflight) > 0 {
		dups := rapid.SliceOfN(rapid.IntRange(0, len(n.inflight)-1), 0, len(n.inflight)).Draw(t, "duplicates")
		for _, k := range dups {
			n.inflight = append(n.inflight, n.inflight[k])
		}
	}
	for _, m := range rapid.Permutation(n.inflight).Draw(t, "delivery order") {
		n.merge(&n.states[m.to], m.state)
	}
	n.inflight = nil
}

// requireConverged fails unless every replica's state equals replica 0's.
func requireConverged[S any](t *rapid.T, states []S, equal func(a, b S) bool) {
	for i := 1; i < len(states); i++ {
		if !equal(states[0], states[i]) {
			t.Fatalf("replica %d diverged from replica 0:\n%+v\n%+v", i, states[i], states[0])
		}
	}
}
