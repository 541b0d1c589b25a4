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
