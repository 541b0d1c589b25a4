package moderation

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts committed reviews as gsd_anticheat_reviews_total
// {outcome}, the outcome being the state a review led to (confirmed,
// dismissed, appealed), on the node that committed it.
type Metrics struct{ reviews *prometheus.CounterVec }

// NewMetrics registers the counter with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gsd_anticheat_reviews_total",
		Help: "Reviews of anti-cheat flags committed, per outcome (the state the review led to).",
	}, []string{"outcome"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	for _, s := range []string{StateConfirmed, StateDismissed, StateAppealed} {
		c.WithLabelValues(s)
	}
	return &Metrics{reviews: c}, nil
}

// Review counts rv.
func (m *Metrics) Review(rv Review) { m.reviews.WithLabelValues(rv.To).Inc() }

// Reviews returns the counter of reviews that led to state (for tests
// and dashboards' sanity checks).
func (m *Metrics) Reviews(state string) prometheus.Counter { return m.reviews.WithLabelValues(state) }

// RecorderMetrics are a Recorder's: gsd_anticheat_flags_recorded_total
// {result} (new, duplicate: the suspicion was recorded before, dropped:
// refused for good) and gsd_anticheat_flags_pending (flags queued, not
// recorded yet: a leader unreachable for long shows here).
type RecorderMetrics struct {
	recorded *prometheus.CounterVec
	pending  prometheus.Gauge
}

// The results of gsd_anticheat_flags_recorded_total.
const (
	ResultNew       = "new"
	ResultDuplicate = "duplicate"
	ResultDropped   = "dropped"
)

// NewRecorderMetrics registers a Recorder's metrics with reg.
func NewRecorderMetrics(reg prometheus.Registerer) (*RecorderMetrics, error) {
	m := &RecorderMetrics{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_anticheat_flags_recorded_total",
			Help: "Anti-cheat flags this node's detectors handed to the moderation world, per result (new, duplicate, dropped).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_anticheat_flags_pending",
			Help: "Anti-cheat flags queued on this node, not recorded in the moderation world yet.",
		}),
	}
	for _, c := range []prometheus.Collector{m.recorded, m.pending} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{ResultNew, ResultDuplicate, ResultDropped} {
		m.recorded.WithLabelValues(r)
	}
	return m, nil
}

// Recorded returns the counter of records of result.
func (m *RecorderMetrics) Recorded(result string) prometheus.Counter {
	return m.recorded.WithLabelValues(result)
}

// Pending returns the gauge of queued flags.
func (m *RecorderMetrics) Pending() prometheus.Gauge { return m.pending }
