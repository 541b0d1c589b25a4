package relay

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are what a relay's /metrics shows: its viewers, what it sends
// them, what it receives and how late.
type metrics struct {
	viewers    prometheus.Gauge
	refused    prometheus.Counter
	frames     prometheus.Counter
	bytes      prometheus.Counter
	eventBytes *prometheus.CounterVec // event streams' bytes by form and compression
	received   prometheus.Counter
	reconnects prometheus.Counter
	lag        *prometheus.GaugeVec
	seq        *prometheus.GaugeVec
}

func newMetrics() metrics {
	return metrics{
		viewers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gsd_relay_viewers", Help: "Watch and event streams the relay serves."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_relay_refused_total", Help: "Viewers refused because the relay was full."}),
		frames:  prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_relay_frames_total", Help: "Watch frames and event-stream writes sent to viewers."}),
		bytes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_relay_bytes_sent_total", Help: "Bytes sent to viewers (watch frames and event streams, gzipped ones as sent)."}),
		eventBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gsd_relay_event_bytes_sent_total",
			Help: "Bytes of event streams sent to viewers (gzipped ones as sent), by the lines' form (whole, lean) and compression (none, gzip)."},
			[]string{"form", "compress"}),
		received:   prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_relay_upstream_bytes_total", Help: "Bytes of the event lines received from the upstream."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "gsd_relay_upstream_reconnects_total", Help: "Upstream streams opened again after a drop."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gsd_relay_upstream_lag_seconds",
			Help: "How long after its leader time the world's latest event reached the relay (the upstream's delay included)."}, []string{"world"}),
		seq: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gsd_relay_upstream_seq", Help: "Seq of the world's latest event the relay received."}, []string{"world"}),
	}
}

func (m metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.viewers, m.refused, m.frames, m.bytes, m.eventBytes, m.received, m.reconnects, m.lag, m.seq} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("relay metrics: %w", err)
		}
	}
	return nil
}
