package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// export posts one world's events while this node leads its group.
type export struct {
	s      *Sink
	world  string
	cancel context.CancelFunc
}

// run runs sessions until ctx ends, backing off after each failure.
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
			log.Debug("export paused", "err", err)
		case errors.Is(err, store.ErrArchiveGap):
			e.s.m.failures.WithLabelValues(failFeed).Inc()
			log.Error("the next event to export is no longer held on this node (archive retention pruned it); "+
				"the export waits: raise --archive-max-age beyond the receiver's longest outage", "err", err)
		default:
			e.s.m.failures.WithLabelValues(failFeed).Inc()
			log.Warn("event feed failed; retrying from the checkpoint", "err", err)
		}
		if !b.sleep(ctx) {
			return
		}
	}
}

// session posts events from the checkpoint on until something fails.
func (e *export) session(ctx context.Context) (progressed bool, err error) {
	pos := e.s.cp.get(e.world)
	sub, err := e.s.src.Subscribe(e.world, pos+1)
	if err != nil {
		return false, fmt.Errorf("subscribe from %d: %w", pos+1, err)
	}
	for {
		evs, err := e.read(ctx, sub)
		if err != nil {
			return progressed, err
		}
		for len(evs) > 0 {
			n := min(len(evs), e.s.cfg.BatchSize)
			if pos, err = e.send(ctx, pos, evs[:n]); err != nil {
				return progressed, err
			}
			progressed = true
			evs = evs[n:]
		}
	}
}

// read returns the next events, lingering up to Config.Linger for more
// once it has some.
func (e *export) read(ctx context.Context, sub Subscription) ([]*fsm.Event, error) {
	evs, err := sub.Next(ctx)
	if err != nil {
		return nil, err
	}
	if e.s.cfg.Linger > 0 && len(evs) < e.s.cfg.BatchSize {
		lctx, cancel := context.WithTimeout(ctx, e.s.cfg.Linger)
		for len(evs) < e.s.cfg.BatchSize {
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

// send posts events that follow pos until the receiver accepts them,
// then stores the new position and returns it.
func (e *export) send(ctx context.Context, pos uint64, evs []*fsm.Event) (uint64, error) {
	for i, ev := range evs {
		if ev.Seq != pos+1+uint64(i) {
			return pos, fmt.Errorf("%w: world %s: event %d after position %d", errFeedOrder, e.world, ev.Seq, pos+uint64(i))
		}
	}
	body, err := encodeBatch(e.world, evs)
	if err != nil {
		return pos, err
	}
	last := evs[len(evs)-1].Seq
	batch := fmt.Sprintf("%s/%d-%d", e.world, pos+1, last)
	b := e.s.backoff()
	for {
		if !e.s.src.Leads(e.world) {
			return pos, errNotLeading
		}
		err := e.post(ctx, batch, body)
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
		e.s.log.Warn("batch not accepted; retrying", "world", e.world, "batch", batch, "err", err, "in", b.wait)
		if !b.sleep(ctx) {
			return pos, ctx.Err()
		}
	}
	e.s.m.batches.Inc()
	e.s.m.events.Add(float64(len(evs)))
	if err := e.s.cp.set(e.world, last); err != nil {
		// The receiver has the events; a restart before the next
		// successful write repeats them, which at-least-once allows.
		e.s.m.failures.WithLabelValues(failCheckpoint).Inc()
		e.s.log.Error("cannot store the export's position; going on (a restart repeats events)", "world", e.world, "err", err)
	}
	return last, nil
}

// maxAnswer bounds what is read of an answer's body (to reuse the
// connection and quote it in the log).
const maxAnswer = 4096

// post sends one batch once.
func (e *export) post(ctx context.Context, batch string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("batch %s: %w", batch, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderKeyID, e.s.cfg.KeyID)
	req.Header.Set(HeaderSignature, Sign(e.s.cfg.Secret, body))
	req.Header.Set(HeaderBatch, batch)
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
