package fsm

import (
	"math"
	"testing"

	"github.com/gsd-dev/gsd/fsm/crdt"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// pnCounterBytes is how snapshots encoded a crdt.PNCounter before fields
// held a counter: the replicas with a nonzero total, sorted, p and n each.
func pnCounterBytes(c crdt.PNCounter) []byte {
	var e encoder
	reps := c.Replicas()
	e.uvarint(uint64(len(reps)))
	for _, r := range reps {
		e.str(r)
		e.uvarint(c.P[r])
		e.uvarint(c.N[r])
	}
	return e.b
}

func counterBytes(c *counter) []byte {
	var e encoder
	writeCounter(&e, c)
	return e.b
}

// A field's counter follows crdt.PNCounter's law: under any increments by
// any replicas (extremes and wraparound included) its value and its
// snapshot bytes equal the PNCounter's, and it restores from them.
func TestCounterMatchesPNCounter(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var c counter
		var want crdt.PNCounter
		delta := rapid.OneOf(rapid.Int64Range(-3, 3), rapid.SampledFrom([]int64{math.MinInt64, math.MaxInt64, math.MinInt64 + 1}), rapid.Int64())
		for range rapid.IntRange(0, 40).Draw(t, "adds") {
			r := rapid.SampledFrom([]string{"eu", "us", "ap", "a", ""}).Draw(t, "replica")
			d := delta.Draw(t, "delta")
			c.add(r, d)
			want.Add(r, d)
			require.Equal(t, want.Value(), c.value())
		}
		b := counterBytes(&c)
		require.Equal(t, pnCounterBytes(want), b)
		d := decoder{b: b}
		back := readCounter(&d)
		require.NoError(t, d.err)
		require.Empty(t, d.b)
		require.Equal(t, want.Value(), back.value())
		require.Equal(t, b, counterBytes(&back))

		cl := c.clone()
		cl.add("eu", 1)
		require.Equal(t, b, counterBytes(&c), "a clone shares nothing with its original")
	})
}

// A snapshot lists a counter's replicas sorted and once each; one that
// does not restores as the maps did: sorted, the last entry of a replica
// wins.
func TestRestoreCounterSortsAndKeepsTheLastEntryOfAReplica(t *testing.T) {
	c := restoreCounter([]replicaCount{{"us", 1, 0}, {"eu", 2, 0}, {"us", 5, 1}, {"ap", 0, 0}})
	require.Equal(t, []replicaCount{{"ap", 0, 0}, {"eu", 2, 0}, {"us", 5, 1}}, c.reps)
	require.Equal(t, int64(6), c.value())
	require.Equal(t, counter{}, restoreCounter(nil))
}
