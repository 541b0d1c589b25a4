package pg

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

// mirror is the sink's own part for one world while this node leads its
// group (a feed.Target): positions and batches in the database.
type mirror struct {
	s     *Sink
	world string

	pos  atomic.Uint64 // position+1 once read from the database; 0 before
	inc  atomic.Int64  // the incarnation resumed, once pos is set
	gap  atomic.Bool   // the next event is not held on this node
	rows rows
	// nearPrune: the lag passed half of the archive's retention (owned by
	// the follower's checks).
	nearPrune bool
}

// position returns the seq up to which every event is in the database,
// once the mirror has read it.
func (m *mirror) position() (uint64, bool) {
	p := m.pos.Load()
	return p - 1, p > 0
}

func (m *mirror) setPosition(seq uint64) { m.pos.Store(seq + 1) }

// report logs and counts a session's failure; b is the backoff ahead.
func (m *mirror) report(err error, b feed.Backoff) { m.fail(err, b.Wait()) }

// fail logs and counts a session's failure (feed.Hooks.Fail).
func (m *mirror) fail(err error, in time.Duration) {
	log := m.s.log.With("world", m.world, "in", in)
	switch {
	case errors.Is(err, errNotLeading):
		log.Debug("mirror paused", "err", err)
	case errors.Is(err, feed.ErrNewIncarnation):
		log.Info("the world was deleted and created again: mirroring its new incarnation from seq 1", "err", err)
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

// Positions returns the world's stored incarnations, the most recently
// written first (feed.Target).
func (m *mirror) Positions(ctx context.Context) ([]feed.Position, error) {
	stored, err := m.s.db.positions(ctx, m.world)
	if err != nil {
		return nil, dbErr(err)
	}
	out := make([]feed.Position, len(stored))
	for i, p := range stored {
		out[i] = feed.Position{Incarnation: p.incarnation, Seq: p.seq}
	}
	return out, nil
}

// Resume publishes the position a session goes on from (feed.Target).
func (m *mirror) Resume(_ context.Context, pos feed.Position) error {
	m.inc.Store(pos.Incarnation)
	m.setPosition(pos.Seq)
	return nil
}

// resumed reports whether the mirror went on with incarnation inc, which
// it does only after checking the database holds no other world's rows
// under it (Verify).
func (m *mirror) resumed(inc int64) bool {
	_, ok := m.position()
	return ok && m.inc.Load() == inc
}

// Verify checks that the database's event of the stored incarnation at
// ev's seq is ev (feed.Verifier): a world of the same name and
// incarnation in a cluster rebuilt against the same database is refused
// with ErrIncarnation.
func (m *mirror) Verify(ctx context.Context, p feed.Position, ev *fsm.Event) error {
	index, timeNs, found, err := m.s.db.event(ctx, m.world, p.Incarnation, p.Seq)
	if err != nil {
		return dbErr(err)
	}
	if found && (index != ev.Index || timeNs != ev.Time) {
		return fmt.Errorf("%w: world %s event %d is at index %d, time %d here and index %d, time %d in the database",
			ErrIncarnation, m.world, p.Seq, ev.Index, ev.Time, index, timeNs)
	}
	return nil
}

// Deliver writes a batch and its position in one transaction
// (feed.Target).
func (m *mirror) Deliver(ctx context.Context, pos feed.Position, evs []*fsm.Event) (feed.Position, error) {
	seq, err := m.write(ctx, pos.Incarnation, pos.Seq, evs)
	return feed.Position{Incarnation: pos.Incarnation, Seq: seq}, err
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
