package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/shard/meta/plan"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// buildGsdctl builds gsdctl for a test that runs it against real nodes
// (quick once the build cache holds its packages).
func buildGsdctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gsdctl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/gsd-dev/gsd/cmd/gsdctl").CombinedOutput()
	require.NoError(t, err, "go build gsdctl: %s", out)
	return bin
}

// runGsdctl runs gsdctl with args and returns its output.
func runGsdctl(ctx context.Context, bin string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// checkAcks checks that every acknowledged action of a world is in it
// once, at its seq, that the world's seqs are exactly those, and that
// each player's counter counts its acknowledged actions (a linearizable
// read). Reads go to the first of nodes that answers: a node serves
// reads only of the shards it runs.
func checkAcks(ctx context.Context, t *testing.T, nodes []*client.Client, world string, acks *moveAcks) {
	t.Helper()
	seqs := slices.Clone(acks.seqs)
	slices.Sort(seqs)
	require.NotEmpty(t, seqs, world)
	require.Equal(t, len(seqs), len(slices.Compact(slices.Clone(seqs))), "%s: an action acknowledged at two seqs, or two at one", world)
	require.Equal(t, uint64(len(seqs)), seqs[len(seqs)-1], "%s: every seq is an acknowledged action", world)
	var seq uint64
	require.Eventually(t, func() bool { // a world read is a replica's, maybe a moment behind
		w, err := readAny(ctx, nodes, func(ctx context.Context, c *client.Client) (client.World, error) { return c.World(ctx, world) })
		seq = w.Seq
		return err == nil && w.Seq >= uint64(len(seqs))
	}, 30*time.Second, 20*time.Millisecond, "%s: the world's seq", world)
	require.Equal(t, uint64(len(seqs)), seq, "%s: no event beyond the acknowledged ones", world)
	for p, n := range acks.by {
		e, err := readAny(ctx, nodes, func(ctx context.Context, c *client.Client) (wire.Entity, error) {
			return c.Entity(ctx, world, "e-"+p, client.Linearizable)
		})
		require.NoError(t, err)
		got, _ := e.Int("n")
		require.Equal(t, int64(n), got, "%s: %s's counter", world, p)
	}
}

// readAny returns the first answer of read through nodes, each given a
// few seconds.
func readAny[T any](ctx context.Context, nodes []*client.Client, read func(context.Context, *client.Client) (T, error)) (T, error) {
	var out T
	var err error
	for _, c := range nodes {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		out, err = read(rctx, c)
		cancel()
		if err == nil {
			return out, nil
		}
	}
	return out, err
}

// gsdctl placement rebalance and gsdctl shard drain, run as an operator
// would against three real nodes with the meta group: rebalance moves
// worlds off the crowded shard while writers act on every world,
// finishing a move an earlier run left fenced, and no acknowledged
// action is lost or applied twice; drain empties a shard,
// each world's state hash at its last seq the same at its new home, and
// then the shard can be removed.
func TestRunThreeNodesWithMetaRebalanceAndDrainWithGsdctl(t *testing.T) {
	t.Parallel()
	bin := buildGsdctl(t)
	mc := startMetaCluster(t, nil) // shards 1 (n1, n2) and 2 (n2, n3); a on 1, b on 2
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	n1, n3 := mc.clients[0], mc.clients[2]
	addr := mc.httpAddrs["n3"]
	ctl := func(args ...string) (string, error) {
		return runGsdctl(ctx, bin, append([]string{"--addr", addr, "--timeout", "30s"}, args...)...)
	}
	var err error
	require.Eventually(t, func() bool {
		_, err = n1.CreateShard(ctx, wire.ShardCreate{ID: 3, Voters: []string{"n1", "n3"}})
		return err == nil || client.Code(err) == "conflict"
	}, 30*time.Second, 20*time.Millisecond, "create shard 3: %v", err)
	one := uint64(1)
	worlds := []string{"a", "b", "r1", "r2", "r3", "r4"}
	for _, w := range worlds[2:] {
		require.Eventually(t, func() bool {
			got, err := n3.PlaceWorld(ctx, w, &one)
			return err == nil && got == 1
		}, 30*time.Second, 20*time.Millisecond, "place %s on shard 1", w)
	}
	for _, w := range worlds {
		require.Eventually(t, func() bool {
			err := n1.CreateWorld(ctx, w, wire.Rules{})
			return err == nil || client.Code(err) == "world_exists"
		}, 30*time.Second, 20*time.Millisecond, "create %s", w)
	}
	require.Eventually(t, func() bool {
		m, err := n3.Shards(ctx)
		if err != nil || len(m.Shards) != 3 {
			return false
		}
		for _, s := range m.Shards {
			if s.Leader == "" {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "every shard has a leader")

	acks := map[string]*moveAcks{}
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { close(stop) }) }
	var wg sync.WaitGroup
	for i, w := range worlds {
		a := &moveAcks{}
		acks[w] = a
		c := mc.clients[i%len(mc.clients)]
		wg.Go(func() { writeThroughMove(ctx, stop, c, w, "p-"+w, a) })
	}
	defer func() {
		stopWriters()
		cancel()
		wg.Wait()
	}()
	for _, w := range worlds {
		require.Eventually(t, func() bool { return acks[w].len() >= 5 }, 30*time.Second, 10*time.Millisecond, "writes on %s before the moves", w)
	}

	// Shard 1 lists 5 worlds, 2 one, 3 none.
	out, err := ctl("placement", "rebalance", "--dry-run")
	require.NoError(t, err, out)
	require.Contains(t, out, "would move world a from shard 1 to shard 3", "the first world by name, to the empty shard")
	// An earlier run cut off after its first fence: a is fenced towards
	// shard 3 (the export step alone, at shard 1's leader) and refuses
	// writes; the run below finishes that move.
	require.Eventually(t, func() bool {
		for _, id := range []string{"n1", "n2"} {
			status, _, err := moveStep(ctx, mc.httpAddrs[id], "a", wire.MoveStep{Step: wire.MoveStepExport, To: 3})
			if err == nil && status == http.StatusOK {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "fence a towards shard 3")
	out, err = ctl("placement", "rebalance")
	require.NoError(t, err, out)
	t.Logf("rebalance:\n%s", out)
	require.Contains(t, out, "world a moved from shard 1 to shard 3", "the fenced move finished")
	moved := strings.Count(out, " moved from shard 1 to shard ")
	require.GreaterOrEqual(t, moved, 2, "shard 1 gives worlds to 2 and 3")
	require.Equal(t, moved, strings.Count(out, " moved from shard "), "only shard 1 gives worlds")
	var m wire.ShardMap
	count := map[uint64]int{}
	require.Eventually(t, func() bool { // n3's copy of the meta map may be a moment behind
		m, err = n3.Shards(ctx)
		clear(count)
		for _, w := range worlds {
			count[m.Worlds[w]]++
		}
		return err == nil && count[1] == 5-moved
	}, 30*time.Second, 20*time.Millisecond, "the map lists %d worlds on shard 1: %v", 5-moved, count)
	require.LessOrEqual(t, count[1]-min(count[2], count[3]), 2, "balanced to within 2 worlds: %v", count)
	// Writes go on at the new homes.
	at := map[string]int{}
	for _, w := range worlds {
		at[w] = acks[w].len()
	}
	for _, w := range worlds {
		require.Eventually(t, func() bool { return acks[w].len() >= at[w]+5 }, 30*time.Second, 10*time.Millisecond, "writes on %s after the moves", w)
	}
	stopWriters()
	wg.Wait()
	for _, w := range worlds {
		checkAcks(ctx, t, mc.clients, w, acks[w])
	}

	// Drain shard 1: its worlds' state hashes at their last seq first.
	var onOne []string
	before := map[string]client.HashPoint{}
	for _, w := range worlds {
		if m.Worlds[w] != 1 {
			continue
		}
		onOne = append(onOne, w)
		before[w], err = readAny(ctx, mc.clients, func(ctx context.Context, c *client.Client) (client.HashPoint, error) {
			return c.Hash(ctx, w, uint64(acks[w].len()))
		})
		require.NoError(t, err, w)
	}
	require.NotEmpty(t, onOne)
	// A world the map does not list, living where its name hashes on
	// another shard: drain pins it there, conditionally (every meta member
	// reads the condition, so the gate opens).
	var unlisted string
	var hashed uint64
	for i := 0; unlisted == ""; i++ {
		w := fmt.Sprintf("u%d", i)
		if hashed, _ = plan.Hashed(w, []uint64{1, 2, 3}); hashed != 1 {
			unlisted = w
		}
	}
	require.Eventually(t, func() bool {
		for _, id := range mc.ids {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+mc.httpAddrs[id]+"/internal/v1/worlds", strings.NewReader(`{"id":"`+unlisted+`"}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Gsd-Forwarded", "1")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "create %s unplaced", unlisted)
	out, err = ctl("shard", "remove", "1")
	require.Error(t, err, "shard 1 still lists worlds: %s", out)
	require.Contains(t, out, "still holds")
	out, err = ctl("shard", "drain", "1")
	require.NoError(t, err, out)
	t.Logf("drain:\n%s", out)
	require.Equal(t, len(onOne), strings.Count(out, " moved from shard 1 to shard "))
	require.Contains(t, out, "shard 1 lists no worlds")
	require.Contains(t, out, fmt.Sprintf("world %s: listed on shard %d, where its name hashes", unlisted, hashed))
	require.NotContains(t, out, "unconditionally")
	require.Eventually(t, func() bool {
		m, err = n3.Shards(ctx)
		return err == nil && !slices.ContainsFunc(onOne, func(w string) bool { return m.Worlds[w] == 1 })
	}, 30*time.Second, 20*time.Millisecond, "n3's map lists no world on shard 1")
	for _, w := range onOne {
		require.NotEqual(t, uint64(1), m.Worlds[w], w)
		var after client.HashPoint
		require.Eventually(t, func() bool {
			after, err = n3.Hash(ctx, w, uint64(acks[w].len())) // n3 runs 2 and 3, never 1
			return err == nil
		}, 30*time.Second, 20*time.Millisecond, "%s's hash at its new home", w)
		require.Equal(t, before[w], after, "%s: the state hash at its last seq, before and after its move", w)
		ev, err := n1.Act(ctx, w, incr("p-"+w, uint64(acks[w].by["p-"+w]+1), "e-p-"+w, 1))
		require.NoError(t, err, "%s takes writes at its new home", w)
		acks[w].add("p-"+w, ev.Seq)
		checkAcks(ctx, t, mc.clients, w, acks[w])
	}
	out, err = ctl("shard", "drain", "1", "--dry-run")
	require.NoError(t, err, out)
	require.Contains(t, out, "nothing to move")
	out, err = ctl("shard", "remove", "1")
	require.NoError(t, err, out)
	out, err = ctl("shard", "drain", "2", "--dry-run")
	require.NoError(t, err, out)
	out, err = ctl("shard", "drain", "9")
	require.Error(t, err, out)
	require.Contains(t, out, "no shard 9")
	require.Eventually(t, func() bool {
		m, err = n3.Shards(ctx)
		return err == nil && len(m.Shards) == 2
	}, 30*time.Second, 20*time.Millisecond, "shard 1 removed from n3's map")
}
