//go:build linux

package jepsen

import "testing"

// The smoke slice of the fault matrix runs in make test: three short
// scenarios, one at a time, each asserting no lost acknowledged write,
// linearizable registers, consistent counters, sets and feeds, and equal
// hashes after healing.

func smoke(t *testing.T, name string) {
	if testing.Short() {
		t.Skip("process-level fault injection")
	}
	for _, sc := range Smoke() {
		if sc.Name == name {
			requireClean(t, runScenario(t, sc, gsdBinary(t)))
			return
		}
	}
	t.Fatalf("no smoke scenario %s", name)
}

func TestSmokeLeaderKill(t *testing.T)        { smoke(t, "smoke-leader-kill") }
func TestSmokePartitionMinority(t *testing.T) { smoke(t, "smoke-partition-minority") }
func TestSmokeLatency(t *testing.T)           { smoke(t, "smoke-latency") }
