package webhook

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// An archive gap is an alarm of its own, as the PostgreSQL sink's: the
// feed failure counter also counts failures that heal by themselves.
func TestExportRaisesTheArchiveGapAlarmUntilTheEventIsHeld(t *testing.T) {
	r := newReceiver(t, nil)
	src := newFakeSource()
	src.Add("a", 10, 1e18)
	src.SetLow("a", 5) // 1..4 pruned before they were exported
	s := startSink(t, testConfig(t, r.srv.URL, t.TempDir()), src, nil)
	gap := func() float64 { return testutil.ToFloat64(s.s.m.Gap.WithLabelValues("a")) }
	require.Eventually(t, func() bool { return gap() == 1 }, 20*time.Second, time.Millisecond)
	d, _ := r.world("a")
	require.Empty(t, d, "nothing past a gap is sent")

	src.SetLow("a", 1) // e.g. a node that still holds them leads now
	require.Eventually(t, func() bool { return s.s.Position("a") == 10 }, 20*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return gap() == 0 }, 20*time.Second, time.Millisecond)
	s.stop()
	require.Zero(t, testutil.CollectAndCount(s.s.m.Gap), "a stopped world's gauge is gone")
}
