package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// TestRunThreeNodesWithMetaMoveAWorldBackAndForthUnderWriters (issue 14,
// log 17): shard 1 runs on n1 and n2, shard 2 on n2 and n3. A world
// created on shard 1 moves to 2, back to 1 and back to 2 again, each move
// called through another node (n1, n2, n3) while a writer on each node
// acts on it: each move back imports over the target's fenced copy,
// across processes (the check step with "back", the import at the
// target's leader). Every acknowledged action is one seq of the world's,
// every seq is one, and n3, which runs shard 2 only, streams the world
// from seq 1 once it copied the events of the other home's stays; each
// writer's counter counts its acknowledged actions.
func TestRunThreeNodesWithMetaMoveAWorldBackAndForthUnderWriters(t *testing.T) {
	t.Parallel()
	mc := startMetaCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	n1, n3 := mc.clients[0], mc.clients[2]
	placeAndCreate(ctx, t, n3, n1, "mv", 1)

	var acks moveAcks
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { close(stop) }) }
	var wg sync.WaitGroup
	for i, c := range mc.clients {
		wg.Go(func() { writeThroughMove(ctx, stop, c, "mv", fmt.Sprintf("w%d", i+1), &acks) })
	}
	defer func() {
		stopWriters()
		cancel()
		wg.Wait()
	}()
	require.Eventually(t, func() bool { return acks.len() >= 20 }, 30*time.Second, 10*time.Millisecond, "writes before the moves")

	var fences []uint64
	for i, to := range []uint64{2, 1, 2} {
		via := mc.clients[i]
		var (
			moved wire.WorldMoved
			err   error
		)
		require.Eventually(t, func() bool {
			moved, err = via.MoveWorld(ctx, "mv", to)
			if err != nil {
				t.Logf("move %d to shard %d through n%d: %v (called again)", i, to, i+1, err)
			}
			return err == nil
		}, 60*time.Second, 20*time.Millisecond, "move %d to shard %d through n%d: %v", i, to, i+1, err)
		require.Equal(t, to, moved.To)
		if !moved.Done { // else an earlier call completed it and answered late
			fences = append(fences, moved.Seq)
		}
		at := acks.len()
		require.Eventually(t, func() bool { return acks.len() >= at+20 }, 30*time.Second, 10*time.Millisecond, "writes after move %d", i)
	}
	stopWriters()
	wg.Wait()
	require.True(t, slices.IsSorted(fences), "the world's seq goes on: fences %v", fences)
	require.Eventually(t, func() bool {
		m, err := n1.Shards(ctx)
		return err == nil && m.Worlds["mv"] == 2
	}, 30*time.Second, 20*time.Millisecond, "n1's map places mv on shard 2")

	seqs := slices.Clone(acks.seqs)
	slices.Sort(seqs)
	require.Equal(t, len(seqs), len(slices.Compact(slices.Clone(seqs))), "an action acknowledged at two seqs, or two at one")
	require.Equal(t, uint64(1), seqs[0])
	require.Equal(t, uint64(len(seqs)), seqs[len(seqs)-1], "every seq is an acknowledged action")
	require.Greater(t, seqs[len(seqs)-1], fences[len(fences)-1])
	require.Eventually(t, func() bool {
		w, err := n3.World(ctx, "mv")
		return err == nil && w.Seq == uint64(len(seqs))
	}, 30*time.Second, 20*time.Millisecond, "n3's replica has every event")
	var streamed []uint64
	require.Eventually(t, func() bool {
		streamed = streamFrom(ctx, n3, "mv", 1, uint64(len(seqs)))
		return uint64(len(streamed)) == uint64(len(seqs))
	}, 60*time.Second, 100*time.Millisecond, "n3 streams mv from seq 1 (got %d of %d events)", len(streamed), len(seqs))
	for i, seq := range streamed {
		require.Equal(t, uint64(i+1), seq, "every event once, in order")
	}
	all := map[string]int64{}
	for _, p := range acks.players {
		all[p]++
	}
	for p, n := range all {
		e, err := n3.Entity(ctx, "mv", "e-"+p, client.Linearizable)
		require.NoError(t, err)
		got, _ := e.Int("n")
		require.Equal(t, n, got, "%s's counter", p)
	}
}
