package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestActionMetricsCountUnderTheirLabelsAndAppearOnlyOnceUsed(t *testing.T) {
	m := newMetrics()
	require.Zero(t, testutil.CollectAndCount(m.actions), "no series before an action is answered")
	require.Zero(t, testutil.CollectAndCount(m.actLatency))

	m.outcome(fsm.StatusApplied).Inc()
	m.outcome(fsm.StatusApplied).Inc()
	m.outcome(fsm.StatusRejected).Inc()
	m.outcome(fsm.Status(9)).Inc() // past the cached statuses: counted all the same
	require.Equal(t, 2.0, testutil.ToFloat64(m.actions.WithLabelValues("applied")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.actions.WithLabelValues("rejected")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.actions.WithLabelValues("status(9)")))
	require.Equal(t, 3, testutil.CollectAndCount(m.actions), "conflict was never used")

	m.latency(fsm.PriorityBulk).Observe(0.001)
	m.latency(fsm.PriorityBulk).Observe(0.002)
	m.latency(fsm.PriorityCritical).Observe(0.003)
	require.Equal(t, uint64(2), histSamples(t, m.actLatency, "bulk"))
	require.Equal(t, uint64(1), histSamples(t, m.actLatency, "critical"))
}

// histSamples returns how many values the child of v labelled l observed.
func histSamples(t *testing.T, v *prometheus.HistogramVec, l string) uint64 {
	t.Helper()
	h, ok := v.WithLabelValues(l).(prometheus.Histogram)
	require.True(t, ok)
	n, _ := histCount(h)
	return n
}
