package pg

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// mirror copies one world's events while this node leads its group.
type mirror struct {
	s      *Sink
	world  string
	cancel context.CancelFunc

	pos  atomic.Uint64 // position+1 once read from the database; 0 before
	gap  atomic.Bool   // the next event is not held on this node
	rows rows
	// nearPrune: the lag passed half of the archive's retention (owned by
	// the sink's Run).
	nearPrune bool
}

// position returns the seq up to which every event is in the database,
// once the mirror has read it.
func (m *mirror) position() (uint64, bool) {
	p := m.pos.Load()
	return p - 1, p > 0
}

func (m *mirror) setPosition(seq uint64) { m.pos.Store(seq + 1) }

// run runs sessions until ctx ends, backing off after each failure.
func (m *mirror) run(ctx context.Context) {
	defer m.s.wg.Done()
	b := m.s.backoff()
	for {
		progressed, err := m.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			b = m.s.backoff()
		}
		m.report(err, b)
		if !b.sleep(ctx) {
			return
		}
	}
}

// report logs and counts a session's failure.
func (m *mirror) report(err error, b backoff) {
	log := m.s.log.With("world", m.world, "in", b.wait)
	switch {
	case errors.Is(err, errNotLeading):
		log.Debug("mirror paused", "err", err)
	case errors.Is(err, store.ErrArchiveGap):
		m.gap.Store(true)
		m.s.m.errors.WithLabelValues(errArchiveGap).Inc()
		log.Error("the next event to mirror is no longer held on this node (archive retention pruned it before it was mirrored); "+
			"the mirror waits: raise --archive-max-age beyond the database's longest outage", "err", err)
	case errors.Is(err, ErrIncarnation):
		m.s.m.errors.WithLabelValues(errIncarnation).Inc()
		log.Error("mirror refused; retrying", "err", err)
	case errors.Is(err, errDB):
		m.s.m.errors.WithLabelValues(errDatabase).Inc()
		log.Warn("database write failed; retrying from the stored position", "err", err)
	default:
		m.s.m.errors.WithLabelValues(errFeed).Inc()
		log.Warn("event feed failed; retrying from the stored position", "err", err)
	}
}

func dbErr(err error) error { return fmt.Errorf("%w: %w", errDB, err) }

// session reads the stored position, then copies events from there until
// something fails; progressed says whether it wrote any.
func (m *mirror) session(ctx context.Context) (progressed bool, err error) {
	inc, pos, known, err := m.resume(ctx)
	if err != nil {
		return false, err
	}
	m.setPosition(pos)
	sub, err := m.s.src.Subscribe(m.world, pos+1)
	if err != nil {
		return false, fmt.Errorf("subscribe from %d: %w", pos+1, err)
	}
	for {
		evs, err := m.read(ctx, sub)
		if err != nil {
			return progressed, err
		}
		if !known {
			// The world's first event names its incarnation.
			if evs[0].Seq != 1 {
				return progressed, fmt.Errorf("%w: world %s starts at seq %d", errFeedOrder, m.world, evs[0].Seq)
			}
			inc, known = evs[0].Time, true
		}
		for len(evs) > 0 {
			n := min(len(evs), m.s.cfg.BatchSize)
			if pos, err = m.write(ctx, inc, pos, evs[:n]); err != nil {
				return progressed, err
			}
			progressed = true
			evs = evs[n:]
		}
	}
}

// resume returns the world's incarnation and the position to go on from.
// known is false when neither the database nor this node can name the
// incarnation yet: the world has no event here, or only from seq 1 on.
func (m *mirror) resume(ctx context.Context) (inc int64, pos uint64, known bool, err error) {
	stored, err := m.s.db.positions(ctx, m.world)
	if err != nil {
		return 0, 0, false, dbErr(err)
	}
	if first, ok := m.s.src.Event(m.world, 1); ok {
		for _, p := range stored {
			if p.incarnation == first.Time {
				return p.incarnation, p.seq, true, nil
			}
		}
		if len(stored) > 0 {
			m.s.log.Info("a new incarnation of the world: mirroring it from seq 1", "world", m.world, "incarnation", first.Time)
		}
		return first.Time, 0, true, nil
	}
	if len(stored) == 0 {
		return 0, 0, false, nil
	}
	// Seq 1 is pruned here: go on with the newest incarnation written,
	// after checking that its last mirrored event is this world's.
	p := stored[0]
	if p.seq == 0 {
		return p.incarnation, 0, true, nil
	}
	ev, ok := m.s.src.Event(m.world, p.seq)
	if !ok {
		return p.incarnation, p.seq, true, nil
	}
	index, timeNs, found, err := m.s.db.event(ctx, m.world, p.incarnation, p.seq)
	if err != nil {
		return 0, 0, false, dbErr(err)
	}
	if found && (index != ev.Index || timeNs != ev.Time) {
		return 0, 0, false, fmt.Errorf("%w: world %s event %d is at index %d, time %d here and index %d, time %d in the database",
			ErrIncarnation, m.world, p.seq, ev.Index, ev.Time, index, timeNs)
	}
	return p.incarnation, p.seq, true, nil
}

// read returns the next events, lingering up to Config.Linger for more
// once it has some.
func (m *mirror) read(ctx context.Context, sub Subscription) ([]*fsm.Event, error) {
	evs, err := sub.Next(ctx)
	if err != nil {
		return nil, err
	}
	if m.s.cfg.Linger > 0 && len(evs) < m.s.cfg.BatchSize {
		lctx, cancel := context.WithTimeout(ctx, m.s.cfg.Linger)
		for len(evs) < m.s.cfg.BatchSize {
			more, err := sub.Next(lctx)
			if err != nil {
				break // a timeout, or an error the next read meets again
			}
			evs = append(evs, more...)
		}
		cancel()
	}
	return evs, ctx.Err()
}

// write stores events that follow pos and returns the new position.
func (m *mirror) write(ctx context.Context, inc int64, pos uint64, evs []*fsm.Event) (uint64, error) {
	m.rows.reset()
	for i, ev := range evs {
		if ev.Seq != pos+1+uint64(i) {
			return pos, fmt.Errorf("%w: world %s: event %d after position %d", errFeedOrder, m.world, ev.Seq, pos+uint64(i))
		}
		if err := m.rows.add(ev); err != nil {
			return pos, err
		}
	}
	if !m.s.src.Leads(m.world) {
		return pos, errNotLeading
	}
	last := evs[len(evs)-1].Seq
	start := time.Now()
	n, err := m.s.db.write(ctx, m.world, inc, &m.rows, last)
	m.s.m.writeTime.Observe(time.Since(start).Seconds())
	if err != nil {
		return pos, dbErr(fmt.Errorf("write world %s events %d..%d: %w", m.world, pos+1, last, err))
	}
	m.s.m.inserted.Add(float64(n))
	m.s.m.batches.Inc()
	m.gap.Store(false)
	m.setPosition(last)
	return last, nil
}
