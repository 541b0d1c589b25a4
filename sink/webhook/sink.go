package webhook

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sink posts the committed events of the worlds this node leads to a
// webhook. Run it on every node; see the package doc for who posts what.
type Sink struct {
	cfg    Config
	src    Source
	m      *metrics
	log    *slog.Logger
	client *http.Client
	cp     *checkpoint

	// owned by Run
	exports map[string]*export
	wg      sync.WaitGroup
}

// New returns a sink over src that keeps its checkpoint in cfg.Dir; it
// posts nothing until Run. reg (may be nil) gets the sink's metrics.
func New(cfg Config, src Source, reg prometheus.Registerer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("webhook: no source")
	}
	cp, err := openCheckpoint(cfg.Dir)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Sink{
		cfg: cfg, src: src, m: m, cp: cp,
		log:    cfg.Logger.With("component", "webhook"),
		client: &http.Client{Timeout: cfg.Timeout},
	}, nil
}

// Position returns the seq up to which the receiver accepted every event
// of world, as the checkpoint holds it.
func (s *Sink) Position(world string) uint64 { return s.cp.get(world) }

// Run exports until ctx ends, then stops every world's export and returns
// nil; call it once. It retries every failure with backoff and never
// gives up.
func (s *Sink) Run(ctx context.Context) error {
	s.exports = make(map[string]*export)
	defer s.stopAll()
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// reconcile starts an export for every world this node leads, stops the
// others and publishes lag.
func (s *Sink) reconcile(ctx context.Context) {
	lead := make(map[string]bool)
	for _, w := range s.src.Worlds() {
		if len(s.cfg.Worlds) > 0 && !slices.Contains(s.cfg.Worlds, w.ID) {
			continue
		}
		if !s.src.Leads(w.ID) {
			continue
		}
		lead[w.ID] = true
		if s.exports[w.ID] == nil {
			s.start(ctx, w.ID)
		}
		pos := s.cp.get(w.ID)
		s.m.position.WithLabelValues(w.ID).Set(float64(pos))
		s.m.lagEvents.WithLabelValues(w.ID).Set(float64(w.Seq - min(pos, w.Seq)))
	}
	for id, e := range s.exports {
		if !lead[id] {
			s.log.Info("not leading world's group: export stopped", "world", id)
			e.cancel()
			delete(s.exports, id)
			s.m.forget(id)
		}
	}
	s.m.worlds.Set(float64(len(s.exports)))
}

func (s *Sink) start(ctx context.Context, world string) {
	ctx, cancel := context.WithCancel(ctx)
	e := &export{s: s, world: world, cancel: cancel}
	s.exports[world] = e
	s.wg.Add(1)
	go e.run(ctx)
	s.log.Info("leading world's group: export started", "world", world, "from", s.cp.get(world)+1)
}

func (s *Sink) stopAll() {
	for id, e := range s.exports {
		e.cancel()
		s.m.forget(id)
	}
	s.wg.Wait()
	s.exports = nil
	s.m.worlds.Set(0)
}

// backoff doubles a wait from RetryMin up to RetryMax; each sleep lasts a
// random time in [wait/2, wait] so that nodes and worlds retrying after
// one outage spread out.
type backoff struct{ wait, max time.Duration }

func (s *Sink) backoff() backoff { return backoff{wait: s.cfg.RetryMin, max: s.cfg.RetryMax} }

// sleep waits (false if ctx ends first) and doubles the wait.
func (b *backoff) sleep(ctx context.Context) bool {
	d := b.wait/2 + rand.N(b.wait/2+1)
	b.wait = min(2*b.wait, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
