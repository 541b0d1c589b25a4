package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sink writes the committed events of the worlds this node leads into
// rotating files. Run it on every node; see the package doc.
type Sink struct {
	cfg Config
	src Source
	m   *metrics
	log *slog.Logger

	mu  sync.Mutex
	pos map[string]uint64 // per world: every event up to here is in a finished file

	// owned by Run
	exports map[string]context.CancelFunc
	wg      sync.WaitGroup
}

// New returns a sink over src writing into cfg.Dir (created if missing);
// it writes nothing until Run. reg (may be nil) gets the metrics.
func New(cfg Config, src Source, reg prometheus.Registerer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("files export: no source")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("files export: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg, src: src, m: m, log: cfg.Logger.With("component", "files"), pos: make(map[string]uint64)}, nil
}

// Position returns the seq up to which every event of world is in a
// finished file, as far as this sink has seen (0 before it resumed).
func (s *Sink) Position(world string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos[world]
}

func (s *Sink) setPosition(world string, seq uint64) {
	s.mu.Lock()
	s.pos[world] = seq
	s.mu.Unlock()
}

// Run exports until ctx ends, finishes every open file and returns nil;
// call it once.
func (s *Sink) Run(ctx context.Context) error {
	s.exports = make(map[string]context.CancelFunc)
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
			ectx, cancel := context.WithCancel(ctx)
			s.exports[w.ID] = cancel
			e := &export{s: s, world: w.ID}
			s.wg.Add(1)
			go e.run(ectx)
			s.log.Info("leading world's group: files export started", "world", w.ID)
		}
		pos := s.Position(w.ID)
		s.m.position.WithLabelValues(w.ID).Set(float64(pos))
		s.m.lagEvents.WithLabelValues(w.ID).Set(float64(w.Seq - min(pos, w.Seq)))
	}
	for id, cancel := range s.exports {
		if !lead[id] {
			s.log.Info("not leading world's group: files export stopped", "world", id)
			cancel()
			delete(s.exports, id)
			s.m.forget(id)
		}
	}
	s.m.worlds.Set(float64(len(s.exports)))
}

func (s *Sink) stopAll() {
	for id, cancel := range s.exports {
		cancel()
		s.m.forget(id)
	}
	s.wg.Wait()
	s.exports = nil
	s.m.worlds.Set(0)
}

// backoff doubles a wait from RetryMin up to RetryMax, jittered into
// [wait/2, wait].
type backoff struct{ wait, max time.Duration }

func (s *Sink) backoff() backoff { return backoff{wait: s.cfg.RetryMin, max: s.cfg.RetryMax} }

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
