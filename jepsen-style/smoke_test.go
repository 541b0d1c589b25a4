//go:build linux

package jepsen

import (
	"strings"
	"testing"
)

// The smoke slice of the fault matrix runs in make test: three short
// scenarios, one at a time, each asserting no lost acknowledged write,
// linearizable registers, consistent counters, sets and feeds, and equal
// hashes after healing.

func smoke(t *testing.T, name string) *Result {
	if testing.Short() {
		t.Skip("process-level fault injection")
	}
	for _, sc := range Smoke() {
		if sc.Name == name {
			var tags []string
			if sc.Tags != "" {
				tags = append(tags, sc.Tags)
			}
			res := runScenario(t, sc, gsdBinary(t, tags...))
			requireClean(t, res)
			return res
		}
	}
	t.Fatalf("no smoke scenario %s", name)
	return nil
}

func TestSmokeLeaderKill(t *testing.T)        { smoke(t, "smoke-leader-kill") }
func TestSmokePartitionMinority(t *testing.T) { smoke(t, "smoke-partition-minority") }

// TestSmokeShardsKillRandom runs two Raft groups per node (a shard map),
// one world on each, and kills random nodes: both groups recover and the
// checks hold for each world.
func TestSmokeShardsKillRandom(t *testing.T) { smoke(t, "smoke-shards-kill-random") }

// TestSmokeShardsMove moves the workload's worlds between three shards
// (the meta group's map) while a fault hits each move: the fenced world
// refuses writes with world_moved, each move completes when resumed, and
// the checks hold for both worlds across their moves.
func TestSmokeShardsMove(t *testing.T) {
	if moved := movesOf(t, smoke(t, "smoke-shards-move")); moved == 0 {
		t.Errorf("no world moved")
	}
}

// TestSmokeShardsMoveBack moves w0 back and forth between two shards
// under faults: its second move goes back to the shard that created it,
// its third to the shard it left, each import replacing the copy the
// shard kept fenced, and the checks hold for both worlds.
func TestSmokeShardsMoveBack(t *testing.T) {
	// Two moves make one move back (A -> B -> A); a quiet machine makes
	// four in the smoke's 14 s, so fewer than two is not load, but a stall.
	if moved := movesOf(t, smoke(t, "smoke-shards-move-back")); moved < 2 {
		t.Errorf("%d moves; want at least 2 (A -> B -> A)", moved)
	}
}

// movesOf checks that every fault of res started and stopped without
// error and counts those that moved a world.
func movesOf(t *testing.T, res *Result) int {
	t.Helper()
	moved := 0
	if res == nil {
		return 0
	}
	for _, f := range res.Faults {
		if f.Err != "" {
			t.Errorf("fault %q: %s", f.Desc, f.Err)
		}
		if strings.HasPrefix(f.Desc, "move ") {
			moved++
		}
	}
	return moved
}

// TestSmokeRotatingFaults passes through every nemesis kind once; each
// must also have started and stopped without error.
func TestSmokeRotatingFaults(t *testing.T) {
	res := smoke(t, "smoke-rotating-faults")
	if res == nil {
		return
	}
	if len(res.Faults) < 20 {
		t.Errorf("only %d faults ran; want every one of the 20 nemeses", len(res.Faults))
	}
	for _, f := range res.Faults {
		if f.Err != "" {
			t.Errorf("fault %q: %s", f.Desc, f.Err)
		}
	}
}
