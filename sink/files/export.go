package files

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/store"
)

var (
	// errNotLeading ends a world's session when this node stopped leading
	// its group.
	errNotLeading = errors.New("gsd/files: not leading the world's group")
	// errFeedOrder reports events that do not follow the position.
	errFeedOrder = errors.New("gsd/files: feed out of order")
	// errWrite marks a failure to write a file.
	errWrite = errors.New("gsd/files: write")
)

// export writes one world's files while this node leads its group.
type export struct {
	s     *Sink
	world string

	cur    *file
	broken bool // cur failed a write: drop it rather than finish it
}

func (e *export) run(ctx context.Context) {
	defer e.s.wg.Done()
	b := e.s.backoff()
	for {
		progressed, err := e.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			b = e.s.backoff()
		}
		log := e.s.log.With("world", e.world, "in", b.wait)
		switch {
		case errors.Is(err, errNotLeading):
			log.Debug("files export paused", "err", err)
		case errors.Is(err, errWrite):
			e.s.m.failures.WithLabelValues(failWrite).Inc()
			log.Error("cannot write the export's files; retrying from the last finished file", "err", err)
		case errors.Is(err, store.ErrArchiveGap):
			e.s.m.failures.WithLabelValues(failFeed).Inc()
			log.Error("the next event to export is no longer held on this node (archive retention pruned it); the export waits", "err", err)
		default:
			e.s.m.failures.WithLabelValues(failFeed).Inc()
			log.Warn("event feed failed; retrying from the last finished file", "err", err)
		}
		if !b.sleep(ctx) {
			return
		}
	}
}

// session writes files from the last finished one on until something
// fails or ctx ends; the open file is finished on the way out unless a
// write to it failed.
func (e *export) session(ctx context.Context) (progressed bool, err error) {
	pos, err := resume(e.s.cfg.Dir, e.world)
	if err != nil {
		return false, fmt.Errorf("%w: %w", errWrite, err)
	}
	e.s.setPosition(e.world, pos)
	defer func() {
		if ferr := e.close(); err == nil {
			err = ferr
		}
	}()
	sub, err := e.s.src.Subscribe(e.world, pos+1)
	if err != nil {
		return false, fmt.Errorf("subscribe from %d: %w", pos+1, err)
	}
	for {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if e.cur != nil {
			rctx, cancel = context.WithDeadline(ctx, e.cur.opened.Add(e.s.cfg.MaxAge))
		}
		evs, err := sub.Next(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && e.cur != nil && errors.Is(err, context.DeadlineExceeded) {
				if err := e.rotate(); err != nil {
					return progressed, err
				}
				progressed = true
				continue
			}
			return progressed, err
		}
		if !e.s.src.Leads(e.world) {
			return progressed, errNotLeading
		}
		for _, ev := range evs {
			if ev.Seq != pos+1 {
				return progressed, fmt.Errorf("%w: world %s: event %d after %d", errFeedOrder, e.world, ev.Seq, pos)
			}
			if e.cur == nil {
				if e.cur, err = create(e.s.cfg.Dir, e.world, ev.Seq); err != nil {
					return progressed, fmt.Errorf("%w: %w", errWrite, err)
				}
			}
			if err := e.cur.append(ev); err != nil {
				e.broken = true
				return progressed, fmt.Errorf("%w: %w", errWrite, err)
			}
			pos = ev.Seq
			if e.cur.bytes >= e.s.cfg.MaxBytes || time.Since(e.cur.opened) >= e.s.cfg.MaxAge {
				if err := e.rotate(); err != nil {
					return progressed, err
				}
				progressed = true
			}
		}
	}
}

// rotate finishes the open file and advances the position to its end.
func (e *export) rotate() error {
	f := e.cur
	e.cur = nil
	name, err := f.finish()
	if err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	e.s.setPosition(e.world, f.last)
	e.s.m.files.Inc()
	e.s.m.events.Add(float64(f.last - f.first + 1))
	e.s.log.Debug("file finished", "world", e.world, "file", name)
	return nil
}

// close finishes the open file, or drops it after a failed write.
func (e *export) close() error {
	if e.cur == nil {
		return nil
	}
	if e.broken {
		e.cur.abort()
		e.cur, e.broken = nil, false
		return nil
	}
	return e.rotate()
}
