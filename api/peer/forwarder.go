package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Forwarder carries this node's checkpoint mismatches to the leader of
// their world's group. Its Report is store.Config.OnCheckpointMismatch:
// it runs on Raft's apply goroutine, so it never blocks. Reports wait in a
// bounded queue (past ForwarderConfig.Queue the oldest is dropped and
// counted) until Run sends them, one at a time, oldest first; a report
// that finds no leader, or a node that no longer leads, or no answer, is
// tried again after a backoff that doubles up to MaxBackoff. A leader
// that refuses it is not asked again: a 404 (a leader of an older version,
// without the route) is logged once and every such report dropped; any
// other 4xx is logged and the report dropped.
type Forwarder struct {
	cfg     ForwarderConfig
	log     *slog.Logger
	outcome *prometheus.CounterVec

	mu    sync.Mutex
	queue []store.CheckpointMismatch
	wake  chan struct{} // a report is queued

	unsupported atomic.Bool // the 404 was logged
}

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	// Queue bounds the reports waiting to be sent.
	Queue int
	// MinBackoff and MaxBackoff bound the wait before a report is tried
	// again.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the forwarder's records (slog.Default when nil).
	Logger *slog.Logger
}

// DefaultForwarderConfig returns the defaults.
func DefaultForwarderConfig() ForwarderConfig {
	return ForwarderConfig{Queue: 64, MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second}
}

// Validate checks the config.
func (c ForwarderConfig) Validate() error {
	switch {
	case c.Queue < 1:
		return fmt.Errorf("mismatch forwarder: queue must be at least 1, got %d", c.Queue)
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("mismatch forwarder: backoff must be 0 < min <= max, got %s and %s", c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// Sender sends one report to the leader: API.SendMismatch.
type Sender func(ctx context.Context, m store.CheckpointMismatch) (steppedDown bool, err error)

// The outcomes of gsd_checkpoint_mismatch_forwards_total.
const (
	forwardSent        = "sent"
	forwardRetried     = "retried"
	forwardDropFull    = "dropped_full"
	forwardUnsupported = "dropped_unsupported"
	forwardRefused     = "dropped_refused"
)

// NewForwarder returns a Forwarder whose counter is registered in reg.
// Reports queue from the start; Run sends them.
func NewForwarder(cfg ForwarderConfig, reg prometheus.Registerer) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	f := &Forwarder{cfg: cfg, log: log, wake: make(chan struct{}, 1),
		outcome: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_checkpoint_mismatch_forwards_total",
			Help: "This node's checkpoint mismatch reports to the leader, by outcome (sent, retried, dropped_full, dropped_unsupported, dropped_refused).",
		}, []string{"outcome"}),
	}
	for _, o := range []string{forwardSent, forwardRetried, forwardDropFull, forwardUnsupported, forwardRefused} {
		f.outcome.WithLabelValues(o)
	}
	if err := reg.Register(f.outcome); err != nil {
		return nil, fmt.Errorf("register mismatch forwarder metrics: %w", err)
	}
	return f, nil
}

// Report queues m for the leader without blocking, dropping the oldest
// queued report when the queue is full.
func (f *Forwarder) Report(m store.CheckpointMismatch) {
	f.mu.Lock()
	if len(f.queue) >= f.cfg.Queue {
		f.queue = f.queue[1:]
		f.outcome.WithLabelValues(forwardDropFull).Inc()
	}
	f.queue = append(f.queue, m)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run sends the queued reports with send until ctx ends.
func (f *Forwarder) Run(ctx context.Context, send Sender) {
	backoff := f.cfg.MinBackoff
	for {
		m, ok := f.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-f.wake:
				continue
			}
		}
		down, err := send(ctx, m)
		wait := f.retry(m, down, err) // cut off by ctx: queued again
		if ctx.Err() != nil {
			return
		}
		if !wait {
			backoff = f.cfg.MinBackoff
			continue
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, f.cfg.MaxBackoff)
	}
}

// next takes the oldest queued report.
func (f *Forwarder) next() (store.CheckpointMismatch, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) == 0 {
		return store.CheckpointMismatch{}, false
	}
	m := f.queue[0]
	f.queue = f.queue[1:]
	return m, true
}

// retry handles the outcome of sending m and reports whether to wait
// before the next attempt: then m is queued again, first, unless newer
// reports fill the queue (it is the oldest: dropped).
func (f *Forwarder) retry(m store.CheckpointMismatch, down bool, err error) bool {
	attrs := []any{"world", m.World, "index", m.Index, "leader", m.Leader}
	re, remote := errors.AsType[*edge.RemoteError](err)
	switch {
	case err == nil:
		f.outcome.WithLabelValues(forwardSent).Inc()
		f.log.Info("checkpoint mismatch reported to the leader", append(attrs, "leader_stepped_down", down)...)
		return false
	case remote && re.Status == http.StatusNotFound:
		f.outcome.WithLabelValues(forwardUnsupported).Inc()
		if !f.unsupported.Swap(true) {
			f.log.Warn("the leader takes no checkpoint mismatch reports (an older version): dropping them; this is logged once", append(attrs, "err", err)...)
		}
		return false
	case remote && re.Status/100 == 4 && re.Status != http.StatusTooManyRequests && re.Status != http.StatusRequestTimeout:
		f.outcome.WithLabelValues(forwardRefused).Inc()
		f.log.Warn("the leader refused a checkpoint mismatch report: dropped", append(attrs, "err", err)...)
		return false
	}
	f.outcome.WithLabelValues(forwardRetried).Inc()
	f.log.Debug("checkpoint mismatch report not delivered; retrying", append(attrs, "err", err)...)
	f.mu.Lock()
	if len(f.queue) < f.cfg.Queue {
		f.queue = append([]store.CheckpointMismatch{m}, f.queue...)
	} else {
		f.outcome.WithLabelValues(forwardDropFull).Inc()
	}
	f.mu.Unlock()
	return true
}
