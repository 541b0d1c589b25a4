package files

import (
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sink's Prometheus collectors.
type metrics struct {
	feed.Gauges
	events   prometheus.Counter
	files    prometheus.Counter
	failures *prometheus.CounterVec
}

// Failure kinds of gsd_files_failures_total.
const (
	failWrite = "write" // a file could not be written, synced or renamed
	failFeed  = "feed"  // the committed feed failed (e.g. archive gap)
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		Gauges: feed.NewGauges(
			feed.GaugeSpec{Name: "gsd_files_position", Help: "Seq up to which every event of a world is in a finished file."},
			feed.GaugeSpec{Name: "gsd_files_lag_events", Help: "Committed events of a world this node exports that are in no finished file yet."},
			feed.GaugeSpec{Name: "gsd_files_archive_gap", Help: "1 while a world's next event to export is not held on this node (pruned by retention): the export is stuck."},
			feed.GaugeSpec{Name: "gsd_files_worlds", Help: "Worlds this node exports to files now (those whose group it leads)."},
		),
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
	if err := feed.Register(reg, "files export", m.Gauges, m.events, m.files, m.failures); err != nil {
		return nil, err
	}
	return m, nil
}
