package loadgen

import (
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/testnode"
)

// startNode runs a real single-node gsd for the test; see internal/testnode.
func startNode(t *testing.T) string { return testnode.Start(t) }

func smallLoad(world string) LoadParams {
	p := DefaultLoadParams()
	p.World, p.Players, p.Items, p.Rate, p.Batch, p.Conns, p.Observers = world, 20, 4, 400, 8, 4, 1
	return p
}

var short = Timing{Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond}
