package files

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
)

var (
	// errNotLeading ends a world's session when this node stopped leading
	// its group.
	errNotLeading = feed.ErrNotLeading
	// errWrite marks a failure to write a file.
	errWrite = errors.New("gsd/files: write")
	// ErrIncarnation reports that the directory's finished files of the
	// world incarnation the export would go on with hold other events
	// than this node's: a world of the same name and incarnation from a
	// cluster rebuilt from empty data dirs into the same directory (its
	// worlds are created at the same log indexes). Nothing is written for
	// it.
	ErrIncarnation = errors.New("gsd/files: the directory holds another world of this name and incarnation")
)

// export is the sink's own part for one world while this node leads its
// group (a feed.Target): the world's open file, finished by size, by age
// (feed.Flusher) and when a session ends (feed.Ender). Finished files are
// its positions.
type export struct {
	s     *Sink
	world string

	cur    *file
	broken bool // cur failed a write: drop it rather than finish it
	// gap is set while the next event to export is not held on this
	// node (pruned by retention) and cleared once events come again:
	// gsd_files_archive_gap.
	gap atomic.Bool
}

// fail logs and counts a session's failure (feed.Hooks.Fail).
func (e *export) fail(err error, in time.Duration) {
	log := e.s.log.With("world", e.world, "in", in)
	switch {
	case errors.Is(err, errNotLeading):
		log.Debug("files export paused", "err", err)
	case errors.Is(err, feed.ErrNewIncarnation):
		log.Info("the world was deleted and created again: exporting its new incarnation from seq 1", "err", err)
	case errors.Is(err, ErrIncarnation):
		e.s.m.failures.WithLabelValues(failFeed).Inc()
		log.Error("export refused: move the directory's files of this world aside (or use another --export-dir); retrying", "err", err)
	case errors.Is(err, errWrite):
		e.s.m.failures.WithLabelValues(failWrite).Inc()
		log.Error("cannot write the export's files; retrying from the last finished file", "err", err)
	case errors.Is(err, store.ErrArchiveGap):
		e.gap.Store(true)
		e.s.m.failures.WithLabelValues(failFeed).Inc()
		log.Error("the next event to export is no longer held on this node (archive retention pruned it); the export waits", "err", err)
	default:
		e.s.m.failures.WithLabelValues(failFeed).Inc()
		log.Warn("event feed failed; retrying from the last finished file", "err", err)
	}
}

// Positions returns the ends of the world's finished files, per
// incarnation, after deleting the open files a crash left behind
// (feed.Target).
// With replicated positions (Config.Positions), the one of the
// incarnation this node holds comes first when it is further: another
// node led the world's group since and finished files up to there in its
// own directory.
func (e *export) Positions(ctx context.Context) ([]feed.Position, error) {
	ps, err := positions(e.s.cfg.Dir, e.world)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWrite, err)
	}
	if rep := e.s.cfg.Positions; rep != nil {
		if ps, err = rep.Merge(ctx, e.s.src, e.world, ps); err != nil {
			return nil, fmt.Errorf("replicated position: %w", err)
		}
	}
	return ps, nil
}

// Verify checks that the line of the finished file of p's incarnation
// that holds ev's seq, if there is one, is ev (feed.Verifier).
func (e *export) Verify(_ context.Context, p feed.Position, ev *fsm.Event) error {
	rec, found, err := findRecord(e.s.cfg.Dir, e.world, p.Incarnation, ev.Seq)
	if err != nil {
		// Unreadable: what it holds cannot be checked, and its events
		// are what was exported; go on as before verification was.
		e.s.log.Warn("cannot read the finished file to check it holds this world's events; going on", "world", e.world, "err", err)
		return nil
	}
	if found && (rec.Index != ev.Index || rec.Time != ev.Time) {
		return fmt.Errorf("%w: world %s event %d is at index %d, time %d here and index %d, time %d in the files",
			ErrIncarnation, e.world, ev.Seq, ev.Index, ev.Time, rec.Index, rec.Time)
	}
	return nil
}

// Resume publishes the position a session goes on from (feed.Target).
func (e *export) Resume(_ context.Context, pos feed.Position) error {
	e.s.setPosition(e.world, pos.Seq)
	return nil
}

// Deliver appends events that follow pos to the open file, rotating it by
// size and age; the position is stored when a file is finished
// (feed.Target).
func (e *export) Deliver(_ context.Context, pos feed.Position, evs []*fsm.Event) (feed.Position, error) {
	e.gap.Store(false) // the feed reads past where it stopped
	for _, ev := range evs {
		if e.cur == nil {
			var err error
			if e.cur, err = create(e.s.cfg.Dir, e.world, pos.Incarnation, ev.Seq); err != nil {
				return pos, fmt.Errorf("%w: %w", errWrite, err)
			}
		}
		if err := e.cur.append(ev); err != nil {
			e.broken = true
			return pos, fmt.Errorf("%w: %w", errWrite, err)
		}
		pos.Seq = ev.Seq
		if e.cur.bytes >= e.s.cfg.MaxBytes || time.Since(e.cur.opened) >= e.s.cfg.MaxAge {
			if err := e.rotate(); err != nil {
				return pos, err
			}
		}
	}
	return pos, nil
}

// FlushAt returns when the open file reaches MaxAge (feed.Flusher).
func (e *export) FlushAt() (time.Time, bool) {
	if e.cur == nil {
		return time.Time{}, false
	}
	return e.cur.opened.Add(e.s.cfg.MaxAge), true
}

// Flush finishes the open file of a quiet world (feed.Flusher).
func (e *export) Flush(context.Context) error { return e.rotate() }

// End finishes the open file, or drops it after a failed write
// (feed.Ender).
func (e *export) End(error) error {
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

// replicatedTimeout bounds the write of a replicated position.
const replicatedTimeout = 10 * time.Second

// rotate finishes the open file and advances the position to its end.
func (e *export) rotate() error {
	f := e.cur
	e.cur = nil
	name, err := f.finish()
	if err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	e.s.setPosition(e.world, f.last)
	if rep := e.s.cfg.Positions; rep != nil {
		// A finished file is a position for good: store it now. Failing,
		// a failover before the next file's end repeats its events.
		ctx, cancel := context.WithTimeout(context.Background(), replicatedTimeout)
		_, err := rep.Save(ctx, e.world, feed.Position{Incarnation: f.inc, Seq: f.last}, true)
		cancel()
		if err != nil {
			e.s.m.failures.WithLabelValues(failWrite).Inc()
			e.s.log.Warn("cannot store the export's replicated position; going on (a failover repeats events)", "world", e.world, "err", err)
		}
	}
	e.s.m.files.Inc()
	e.s.m.events.Add(float64(f.last - f.first + 1))
	e.s.log.Debug("file finished", "world", e.world, "file", name)
	return nil
}
