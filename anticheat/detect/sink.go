package detect

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Sink takes flags: the moderators' channel (never the flagged player's,
// never the public's), metrics, a log. Flag must not block for long: it
// runs on the detector's loop.
type Sink interface {
	Flag(Flag)
}

// Sinks hands every flag to each of its sinks in order.
type Sinks []Sink

// Flag hands f to every sink.
func (s Sinks) Flag(f Flag) {
	for _, k := range s {
		k.Flag(f)
	}
}

// Memory keeps the flags in memory, for a moderator's review and tests.
type Memory struct {
	mu    sync.Mutex
	flags []Flag
}

// Flag keeps f.
func (m *Memory) Flag(f Flag) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flags = append(m.flags, f)
}

// Flags returns the flags kept so far, in arrival order.
func (m *Memory) Flags() []Flag {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.flags)
}

// Log writes each flag to a structured log at warning level, but for
// the flags a Runner hands out again from its checkpoint (Flag.Restored:
// logged before the restart).
type Log struct{ Logger *slog.Logger }

// Flag logs f unless it is restored.
func (l Log) Flag(f Flag) {
	if f.Restored {
		return
	}
	l.Logger.LogAttrs(context.Background(), slog.LevelWarn, "anticheat flag",
		slog.String("detector", f.Detector), slog.Any("players", f.Players),
		slog.Float64("score", f.Score), slog.Any("evidence", f.Evidence))
}

// Metrics counts flags per detector as gsd_anticheat_flags_total and,
// given to a Runner, the events its followers observed as
// gsd_anticheat_events_observed_total, those they skipped because the
// feed no longer held them as gsd_anticheat_events_skipped_total, and the
// checkpoints it could not load or save as
// gsd_anticheat_checkpoint_errors_total{op}.
type Metrics struct {
	flags       *prometheus.CounterVec
	observed    prometheus.Counter
	skipped     prometheus.Counter
	checkpoints *prometheus.CounterVec
}

// NewMetrics registers the counters with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		flags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_anticheat_flags_total",
			Help: "Anti-cheat flags raised, per detector.",
		}, []string{"detector"}),
		observed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_anticheat_events_observed_total",
			Help: "Committed events the anti-cheat detectors observed (every world this node follows).",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_anticheat_events_skipped_total",
			Help: "Committed events the anti-cheat detectors never saw: the event archive no longer held them when a follower (re)started.",
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_anticheat_checkpoint_errors_total",
			Help: "Anti-cheat detectors' checkpoints that could not be loaded (damaged, another version or config: the counts were rebuilt from the archive) or saved.",
		}, []string{"op"}),
	}
	for _, c := range []prometheus.Collector{m.flags, m.observed, m.skipped, m.checkpoints} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Flag counts f unless it is restored (Flag.Restored: counted before the
// restart), so gsd_anticheat_flags_total does not count a flag again at
// each restart.
func (m *Metrics) Flag(f Flag) {
	if !f.Restored {
		m.flags.WithLabelValues(f.Detector).Inc()
	}
}
