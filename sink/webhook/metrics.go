package webhook

import (
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sink's Prometheus collectors. Per-world series exist
// only for the worlds this node exports now.
type metrics struct {
	feed.Gauges
	events   prometheus.Counter
	batches  prometheus.Counter
	postTime prometheus.Histogram
	failures *prometheus.CounterVec
}

// Failure kinds of gsd_webhook_failures_total.
const (
	failStatus     = "status"     // the receiver answered other than 2xx
	failTransport  = "transport"  // no answer: connection refused, reset, timeout
	failCheckpoint = "checkpoint" // the checkpoint file could not be written
	failFeed       = "feed"       // the committed feed failed (e.g. archive gap)
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		Gauges: feed.NewGauges(
			feed.GaugeSpec{Name: "gsd_webhook_position", Help: "Seq up to which the receiver accepted every event of a world."},
			feed.GaugeSpec{Name: "gsd_webhook_lag_events", Help: "Committed events of a world this node exports that the receiver has not accepted yet."},
			feed.GaugeSpec{Name: "gsd_webhook_archive_gap", Help: "1 while a world's next event to export is not held on this node (pruned by retention): the export is stuck."},
			feed.GaugeSpec{Name: "gsd_webhook_worlds", Help: "Worlds this node exports now (those whose group it leads)."},
		),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_webhook_events_total", Help: "Events in batches the receiver accepted (repeats after a restart counted again).",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_webhook_batches_total", Help: "Batches the receiver accepted (2xx).",
		}),
		postTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gsd_webhook_post_seconds", Help: "Time of one batch's POST, accepted or not.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_webhook_failures_total", Help: "Failed attempts, by kind (status, transport, checkpoint, feed); each is retried.",
		}, []string{"kind"}),
	}
	if err := feed.Register(reg, "webhook", m.Gauges, m.events, m.batches, m.postTime, m.failures); err != nil {
		return nil, err
	}
	return m, nil
}
