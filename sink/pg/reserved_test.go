package pg

import (
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/stretchr/testify/require"
)

// gsd's own worlds (gsd.sinks, the webhook's and files' positions, here)
// are not mirrored unless asked for, nor their players' data.
func TestMirrorLeavesGsdsOwnWorldsOutUnlessReservedIsSet(t *testing.T) {
	_, dsn := startPG(t)
	c := newCluster(t, 1)
	c.createWorld(feed.PositionsWorld)
	c.createWorld("play")
	for i := range 5 {
		c.act(&fsm.Action{World: feed.PositionsWorld, Player: "p", Seq: uint64(i + 1), Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
		c.act(&fsm.Action{World: "play", Player: "p", Seq: uint64(i + 1), Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
	}
	r := runSink(t, testConfig(dsn), feed.NewStoreSource(c.nodes[0]))
	requireMirrorEquals(t, dsn, c.nodes[0], "play")
	require.Eventually(t, func() bool { return r.gauge("gsd_pgsink_worlds") == 1 }, 10*time.Second, 10*time.Millisecond)
	r.stop()
	require.Zero(t, storedPosition(t, dsn, feed.PositionsWorld))
	require.Empty(t, readRows(t, dsn, feed.PositionsWorld, incarnation(t, c.nodes[0], feed.PositionsWorld)))

	cfg := testConfig(dsn)
	cfg.Reserved = true
	runSink(t, cfg, feed.NewStoreSource(c.nodes[0]))
	requireMirrorEquals(t, dsn, c.nodes[0], feed.PositionsWorld)
}
