//go:build jepsen && linux

package jepsen

import (
	"testing"
	"time"
)

// TestBrokenReadsAreCaught runs the suite against gsd built with
// -tags jepsen_broken, whose linearizable reads skip the leader, VerifyLeader
// and the apply wait (any node answers from its local state). The suite
// must find non-linearizable registers; a pass here means the checker is
// blind.
func TestBrokenReadsAreCaught(t *testing.T) {
	bin := gsdBinary(t, "jepsen_broken")
	sc := Scenario{Name: "broken-stale-reads", Nemesis: func() Nemesis { return Latency(75*time.Millisecond, 50*time.Millisecond) },
		Duration: 20 * time.Second}
	res := runScenario(t, sc, bin)
	if res.Linearizable {
		t.Fatalf("seed %d: the broken build passed the linearizability check: %s", res.Seed, res.Summary())
	}
	t.Logf("caught as expected: %s; evidence in %s", res.Summary(), res.Dir)
}
