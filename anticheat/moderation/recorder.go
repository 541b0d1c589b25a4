package moderation

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/fsm"
)

// Writer is what a Recorder records through: Raise on World's leader
// (the edge routes it there, this node or another), and this node's view
// of a world (for the incarnation a flag was found in).
type Writer interface {
	Raise(ctx context.Context, r Record) (bool, error)
	World(id string) (fsm.WorldInfo, error)
}

// Recorder is the detectors' Sink that records flags in World. Flag only
// queues (it runs on the detector's loop); Run records the queue in
// order, retrying a failed record (no leader, an unknown outcome, a
// network failure) with backoff until it succeeds or its context ends.
// Repeating a record is safe: the second write of a suspicion changes
// nothing (Raise).
type Recorder struct {
	w   Writer
	by  string
	log *slog.Logger
	// RetryMin and RetryMax bound the wait after a failed record.
	RetryMin, RetryMax time.Duration
	// Metrics, when set before Run, count the records and the queue.
	Metrics *RecorderMetrics

	mu      sync.Mutex
	pending []Record
	wake    chan struct{}
}

// NewRecorder returns a Recorder through w of flags raised by by (a node
// id) that logs its failures to log.
func NewRecorder(w Writer, by string, log *slog.Logger) (*Recorder, error) {
	if w == nil || log == nil || by == "" {
		return nil, errors.New("gsd/anticheat/moderation: a recorder needs a writer, a name and a logger")
	}
	return &Recorder{w: w, by: by, log: log, RetryMin: 100 * time.Millisecond, RetryMax: 10 * time.Second, wake: make(chan struct{}, 1)}, nil
}

// Flag queues f's record (detect.Sink). The incarnation is f's (that of
// the world its detectors followed: a flag handed out again from a
// checkpoint after its world was deleted keeps its record), else the one
// of f's world that this node knows now. A restored flag's incarnation
// is never looked up: its 0 is that of a world made before incarnations,
// which its first record carried, while the world's name may have a new
// incarnation now (and the record a new id, a duplicate).
func (r *Recorder) Flag(f detect.Flag) {
	inc := f.Incarnation
	if n := len(f.Evidence); n > 0 && inc == 0 && !f.Restored {
		if wi, err := r.w.World(f.Evidence[n-1].World); err == nil {
			inc = wi.Incarnation
		}
	}
	r.mu.Lock()
	r.pending = append(r.pending, FromFlag(f, inc, r.by))
	r.gauge()
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Pending returns how many flags wait to be recorded.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Run records queued flags until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	for {
		r.mu.Lock()
		var rec Record
		queued := len(r.pending) > 0
		if queued {
			rec = r.pending[0]
		}
		r.mu.Unlock()
		if !queued {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
				continue
			}
		}
		if !r.record(ctx, rec) {
			return
		}
		r.mu.Lock()
		r.pending = r.pending[1:]
		r.gauge()
		r.mu.Unlock()
	}
}

// gauge sets the pending gauge; r.mu is held.
func (r *Recorder) gauge() {
	if r.Metrics != nil {
		r.Metrics.pending.Set(float64(len(r.pending)))
	}
}

// count counts a record's result.
func (r *Recorder) count(result string) {
	if r.Metrics != nil {
		r.Metrics.recorded.WithLabelValues(result).Inc()
	}
}

// record records rec, retrying until it succeeds (true), is refused for
// good (logged, true) or ctx ends (false).
func (r *Recorder) record(ctx context.Context, rec Record) bool {
	wait := r.RetryMin
	for attempt := 1; ; attempt++ {
		created, err := r.w.Raise(ctx, rec)
		switch {
		case err == nil:
			r.log.Info("anticheat flag recorded", "id", rec.ID, "detector", rec.Detector, "players", rec.Players, "new", created)
			r.count(map[bool]string{true: ResultNew, false: ResultDuplicate}[created])
			return true
		case errors.Is(err, ErrInvalid):
			r.log.Error("anticheat flag refused; dropped", "id", rec.ID, "detector", rec.Detector, "err", err)
			r.count(ResultDropped)
			return true
		case attempt == 1 || attempt%10 == 0:
			r.log.Warn("anticheat flag not recorded yet; retrying", "id", rec.ID, "attempt", attempt, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, r.RetryMax)
	}
}
