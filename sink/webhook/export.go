package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
)

// export is the sink's own part for one world while this node leads its
// group (a feed.Target): signed POSTs and the checkpoint.
type export struct {
	s     *Sink
	world string
	// last is the session's last delivered position (zero: none yet),
	// stored to the replicated positions when the session ends.
	last feed.Position
	// gap is set while the next event to export is not held on this
	// node (pruned by retention) and cleared once events come again:
	// gsd_webhook_archive_gap.
	gap atomic.Bool
}

// fail logs and counts a session's failure (feed.Hooks.Fail).
func (e *export) fail(err error, in time.Duration) {
	log := e.s.log.With("world", e.world, "in", in)
	switch {
	case errors.Is(err, errNotLeading):
		log.Debug("export paused", "err", err)
	case errors.Is(err, feed.ErrNewIncarnation):
		log.Info("the world was deleted and created again: exporting its new incarnation from seq 1", "err", err)
	case errors.Is(err, errCheckpoint):
		e.s.m.failures.WithLabelValues(failCheckpoint).Inc()
		log.Error("cannot store the export's position; retrying", "err", err)
	case errors.Is(err, store.ErrArchiveGap):
		e.gap.Store(true)
		e.s.m.failures.WithLabelValues(failFeed).Inc()
		log.Error("the next event to export is no longer held on this node (archive retention pruned it); "+
			"the export waits: raise --archive-max-age beyond the receiver's longest outage", "err", err)
	default:
		e.s.m.failures.WithLabelValues(failFeed).Inc()
		log.Warn("event feed failed; retrying from the checkpoint", "err", err)
	}
}

// Positions returns the world's position: the checkpoint's, or the
// replicated one (Config.Positions) of the incarnation this node holds
// when it is further (another node led the world's group since)
// (feed.Target).
func (e *export) Positions(ctx context.Context) ([]feed.Position, error) {
	var ps []feed.Position
	if p, ok := e.s.cp.position(e.world); ok {
		ps = []feed.Position{p}
	}
	if rep := e.s.cfg.Positions; rep != nil {
		var err error
		if ps, err = rep.Merge(ctx, e.s.src, e.world, ps); err != nil {
			return nil, fmt.Errorf("%w: %w", errCheckpoint, err)
		}
	}
	return ps, nil
}

// Resume stores the position a session goes on from when it names
// another incarnation than the checkpoint's (a world deleted and created
// again starts over, a position stored without one adopts it), so
// Position reports the new one's (feed.Target).
func (e *export) Resume(_ context.Context, pos feed.Position) error {
	cur, ok := e.s.cp.position(e.world)
	if pos.Incarnation == 0 || !ok || cur == pos {
		return nil // nothing stored to replace, or nothing new to store
	}
	if err := e.s.cp.store(e.world, pos); err != nil {
		return fmt.Errorf("%w: %w", errCheckpoint, err)
	}
	return nil
}

// Deliver posts events that follow pos until the receiver accepts them,
// then stores the new position and returns it (feed.Target).
func (e *export) Deliver(ctx context.Context, pos feed.Position, evs []*fsm.Event) (feed.Position, error) {
	e.gap.Store(false) // the feed reads past where it stopped
	for i, ev := range evs {
		if ev.Seq != pos.Seq+1+uint64(i) {
			return pos, fmt.Errorf("%w: world %s: event %d after position %d", errFeedOrder, e.world, ev.Seq, pos.Seq+uint64(i))
		}
	}
	body, err := encodeBatch(e.world, pos.Incarnation, evs)
	if err != nil {
		return pos, err
	}
	last := feed.Position{Incarnation: pos.Incarnation, Seq: evs[len(evs)-1].Seq}
	batch := fmt.Sprintf("%s/%d-%d", e.world, pos.Seq+1, last.Seq)
	b := e.s.backoff()
	for {
		if !e.s.src.Leads(e.world) {
			return pos, errNotLeading
		}
		err := e.post(ctx, batch, pos.Incarnation, body)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return pos, ctx.Err()
		}
		kind := failTransport
		if errors.Is(err, ErrRejected) {
			kind = failStatus
		}
		e.s.m.failures.WithLabelValues(kind).Inc()
		e.s.log.Warn("batch not accepted; retrying", "world", e.world, "batch", batch, "err", err, "in", b.Wait())
		if !b.Sleep(ctx) {
			return pos, ctx.Err()
		}
	}
	e.s.m.batches.Inc()
	e.s.m.events.Add(float64(len(evs)))
	if err := e.s.cp.store(e.world, last); err != nil {
		// The receiver has the events; a restart before the next
		// successful write repeats them, which at-least-once allows.
		e.s.m.failures.WithLabelValues(failCheckpoint).Inc()
		e.s.log.Error("cannot store the export's position; going on (a restart repeats events)", "world", e.world, "err", err)
	}
	e.last = last
	if rep := e.s.cfg.Positions; rep != nil {
		if _, err := rep.Save(ctx, e.world, last, false); err != nil && ctx.Err() == nil {
			// As above: a failover before the next write repeats events.
			e.s.m.failures.WithLabelValues(failCheckpoint).Inc()
			e.s.log.Warn("cannot store the export's replicated position; going on (a failover repeats events)", "world", e.world, "err", err)
		}
	}
	return last, nil
}

// End stores the session's last delivered position to the replicated
// positions, so that a clean stop while leading (a shutdown, a sink
// stopped) leaves nothing for the next leader to repeat; after losing
// the leadership the write fails, which at-least-once allows
// (feed.Ender).
func (e *export) End(error) error {
	rep, last := e.s.cfg.Positions, e.last
	e.last = feed.Position{}
	if rep == nil || last.Seq == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.s.cfg.Timeout)
	defer cancel()
	if _, err := rep.Save(ctx, e.world, last, true); err != nil {
		e.s.log.Debug("cannot store the export's replicated position at the session's end", "world", e.world, "err", err)
	}
	return nil
}

// maxAnswer bounds what is read of an answer's body (to reuse the
// connection and quote it in the log).
const maxAnswer = 4096

// post sends one batch once.
func (e *export) post(ctx context.Context, batch string, inc int64, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("batch %s: %w", batch, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderKeyID, e.s.cfg.KeyID)
	req.Header.Set(HeaderSignature, Sign(e.s.cfg.Secret, body))
	req.Header.Set(HeaderBatch, batch)
	req.Header.Set(HeaderIncarnation, strconv.FormatInt(inc, 10))
	start := time.Now()
	resp, err := e.s.client.Do(req)
	e.s.m.postTime.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("batch %s: %w", batch, err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: batch %s: %s: %q", ErrRejected, batch, resp.Status, answer)
	}
	return nil
}
