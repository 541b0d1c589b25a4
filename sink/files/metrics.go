package files

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sink's Prometheus collectors.
type metrics struct {
	lagEvents *prometheus.GaugeVec
	position  *prometheus.GaugeVec
	gap       *prometheus.GaugeVec
	worlds    prometheus.Gauge
	events    prometheus.Counter
	files     prometheus.Counter
	failures  *prometheus.CounterVec
}

// Failure kinds of gsd_files_failures_total.
const (
	failWrite = "write" // a file could not be written, synced or renamed
	failFeed  = "feed"  // the committed feed failed (e.g. archive gap)
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gsd_files_lag_events", Help: "Committed events of a world this node exports that are in no finished file yet.",
		}, []string{"world"}),
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gsd_files_position", Help: "Seq up to which every event of a world is in a finished file.",
		}, []string{"world"}),
		gap: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gsd_files_archive_gap", Help: "1 while a world's next event to export is not held on this node (pruned by retention): the export is stuck.",
		}, []string{"world"}),
		worlds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_files_worlds", Help: "Worlds this node exports to files now (those whose group it leads).",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_files_events_total", Help: "Events in files this node finished.",
		}),
		files: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_files_finished_total", Help: "Files this node finished (rotated).",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_files_failures_total", Help: "Failures of the files export, by kind (write, feed); each is retried.",
		}, []string{"kind"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.lagEvents, m.position, m.gap, m.worlds, m.events, m.files, m.failures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("files export metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) forget(world string) {
	m.lagEvents.DeleteLabelValues(world)
	m.position.DeleteLabelValues(world)
	m.gap.DeleteLabelValues(world)
}

// setGap publishes whether world's export is stuck at an archive gap.
func (m *metrics) setGap(world string, gap bool) {
	v := 0.0
	if gap {
		v = 1
	}
	m.gap.WithLabelValues(world).Set(v)
}
