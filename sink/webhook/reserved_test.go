package webhook

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// gsd's own worlds (gsd.moderation here) are not exported unless asked
// for: they are records, not play, and gsd.sinks holds the export's own
// positions.
func TestExportLeavesGsdsOwnWorldsOutUnlessReservedIsSet(t *testing.T) {
	r := newReceiver(t, nil)
	src := newFakeSource()
	src.Add("gsd.moderation", 20, 1e18)
	src.Add("play", 20, 1e18)
	cfg := testConfig(t, r.srv.URL, t.TempDir())
	s := startSink(t, cfg, src, prometheus.NewRegistry())
	require.Eventually(t, caughtUp(r, src, "play"), 20*time.Second, time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(s.s.m.Worlds), "only play is followed")
	s.stop()
	got, _ := r.world("gsd.moderation")
	require.Empty(t, got)
	require.Zero(t, s.s.Position("gsd.moderation"))

	cfg = testConfig(t, r.srv.URL, t.TempDir())
	cfg.Reserved = true
	s = startSink(t, cfg, src, nil)
	require.Eventually(t, caughtUp(r, src, "gsd.moderation"), 20*time.Second, time.Millisecond)
	s.stop()
	requireExactly(t, r, src, "gsd.moderation")
}
