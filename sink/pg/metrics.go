package pg

import (
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sink's Prometheus collectors. Per-world series exist
// only for the worlds this node mirrors now.
type metrics struct {
	feed.Gauges
	lagSeconds *prometheus.GaugeVec
	inserted   prometheus.Counter
	batches    prometheus.Counter
	writeTime  prometheus.Histogram
	errors     *prometheus.CounterVec
	schema     prometheus.Gauge

	playersPending *prometheus.GaugeVec
	playerRows     prometheus.Counter
}

// Error kinds of gsd_pgsink_errors_total.
const (
	errDatabase    = "database"    // a write, a read or the connection failed
	errArchiveGap  = "archive_gap" // the node no longer holds the next event
	errIncarnation = "incarnation" // the database holds another world by that name
	errFeed        = "feed"        // the feed failed otherwise
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		Gauges: feed.NewGauges(
			feed.GaugeSpec{Name: "gsd_pgsink_position", Help: "Seq up to which every event of a world is in PostgreSQL."},
			feed.GaugeSpec{Name: "gsd_pgsink_lag_events", Help: "Committed events of a world this node mirrors that are not in PostgreSQL yet."},
			feed.GaugeSpec{Name: "gsd_pgsink_archive_gap", Help: "1 while a world's next unmirrored event is not held on this node (pruned by retention): the mirror is stuck."},
			feed.GaugeSpec{Name: "gsd_pgsink_worlds", Help: "Worlds this node mirrors now (those whose group it leads)."},
		),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gsd_pgsink_lag_seconds", Help: "Age (by leader time) of the oldest event of a world not in PostgreSQL yet; 0 when caught up.",
		}, []string{"world"}),
		inserted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_pgsink_events_inserted_total", Help: "Event rows inserted (rows already present are not counted).",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_pgsink_batches_total", Help: "Transactions that committed a batch of events.",
		}),
		writeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gsd_pgsink_write_seconds", Help: "Time of one batch's transaction, committed or not.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_pgsink_errors_total", Help: "Failures of the sink, by kind (database, archive_gap, incarnation, feed); each is retried.",
		}, []string{"kind"}),
		schema: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_pgsink_schema_version", Help: "Version of the sink's schema in PostgreSQL once migrated (0: not yet).",
		}),
		playersPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gsd_pgsink_players_pending", Help: "Players of a world this node mirrors whose data here is newer than in PostgreSQL, as of the last check (0 when caught up).",
		}, []string{"world"}),
		playerRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_pgsink_player_rows_written_total", Help: "Player data rows inserted or replaced by a newer version.",
		}),
	}
	if err := feed.Register(reg, "pg sink", m.Gauges, m.lagSeconds, m.inserted, m.batches, m.writeTime, m.errors, m.schema, m.playersPending, m.playerRows); err != nil {
		return nil, err
	}
	return m, nil
}

// forget drops a world's series when this node stops mirroring it.
func (m *metrics) forget(world string) {
	m.Forget(world)
	m.lagSeconds.DeleteLabelValues(world)
}
