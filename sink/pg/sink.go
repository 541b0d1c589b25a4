package pg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink mirrors the committed events of the worlds this node leads into
// PostgreSQL. Run it on every node; see the package doc for who writes
// what.
type Sink struct {
	cfg Config
	src Source
	m   *metrics
	log *slog.Logger

	// owned by Run
	db      *db
	mirrors map[string]*mirror
	wg      sync.WaitGroup
}

// New returns a sink over src; it touches neither the database nor src
// until Run. reg (may be nil) gets the sink's metrics.
func New(cfg Config, src Source, reg prometheus.Registerer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("pg sink: no source")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg, src: src, m: m, log: cfg.Logger.With("component", "pgsink")}, nil
}

// Run mirrors until ctx ends, then stops every world's mirror and returns
// nil; call it once. It retries what fails (the database down, a schema
// another gsd migrated further) with backoff, logging each failure, and
// never gives up.
func (s *Sink) Run(ctx context.Context) error {
	pcfg, err := pgxpool.ParseConfig(s.cfg.DSN)
	if err != nil {
		return fmt.Errorf("pg sink: DSN: %w", err)
	}
	pcfg.MaxConns = s.cfg.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, pcfg) // connects on first use
	if err != nil {
		return fmt.Errorf("pg sink: %w", err)
	}
	defer pool.Close()
	s.db = newDB(pool, s.cfg.Schema, s.cfg.Timeout)
	if !s.migrate(ctx) {
		return nil
	}
	s.mirrors = make(map[string]*mirror)
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

// migrate brings the schema up to date, retrying until it succeeds or ctx
// ends (false).
func (s *Sink) migrate(ctx context.Context) bool {
	b := s.backoff()
	for {
		mctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		v, err := migrate(mctx, s.db.pool, s.cfg.Schema)
		cancel()
		if err == nil {
			s.m.schema.Set(float64(v))
			s.log.Info("schema ready", "schema", s.cfg.Schema, "version", v)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.m.errors.WithLabelValues(errDatabase).Inc()
		s.log.Error("cannot migrate the sink's schema; retrying", "schema", s.cfg.Schema, "err", err, "in", b.wait)
		if !b.sleep(ctx) {
			return false
		}
	}
}

// reconcile starts a mirror for every world this node leads and stops the
// others, and publishes the mirrors' positions and lag.
func (s *Sink) reconcile(ctx context.Context) {
	lead := make(map[string]bool)
	now := time.Now()
	for _, w := range s.src.Worlds() {
		if len(s.cfg.Worlds) > 0 && !slices.Contains(s.cfg.Worlds, w.ID) {
			continue
		}
		if !s.src.Leads(w.ID) {
			continue
		}
		lead[w.ID] = true
		m := s.mirrors[w.ID]
		if m == nil {
			m = s.start(ctx, w.ID)
		}
		s.publish(m, w.Seq, now)
	}
	for id, m := range s.mirrors {
		if !lead[id] {
			s.log.Info("not leading world's group: mirror stopped", "world", id)
			m.cancel()
			delete(s.mirrors, id)
			s.m.forget(id)
		}
	}
	s.m.worlds.Set(float64(len(s.mirrors)))
}

func (s *Sink) start(ctx context.Context, world string) *mirror {
	ctx, cancel := context.WithCancel(ctx)
	m := &mirror{s: s, world: world, cancel: cancel}
	s.mirrors[world] = m
	s.wg.Add(1)
	go m.run(ctx)
	s.log.Info("leading world's group: mirror started", "world", world)
	return m
}

// publish sets a world's gauges from its mirror's position (once the
// mirror has read it) and the node's seq of the world.
func (s *Sink) publish(m *mirror, seq uint64, now time.Time) {
	gap := 0.0
	if m.gap.Load() {
		gap = 1
	}
	s.m.gap.WithLabelValues(m.world).Set(gap)
	pos, ok := m.position()
	if !ok {
		return
	}
	s.m.position.WithLabelValues(m.world).Set(float64(pos))
	var lag uint64
	if seq > pos {
		lag = seq - pos
	}
	s.m.lagEvents.WithLabelValues(m.world).Set(float64(lag))
	age := 0.0
	if lag > 0 {
		if ev, ok := s.src.Event(m.world, pos+1); ok {
			age = max(0, now.Sub(time.Unix(0, ev.Time)).Seconds())
		}
	}
	s.m.lagSeconds.WithLabelValues(m.world).Set(age)
	s.warnRetention(m, lag, age)
}

// warnRetention logs once, when a world's lag first passes half of the
// archive's retention, that the events it has not mirrored are about to
// be pruned (gsd_pgsink_archive_gap then says it happened).
func (s *Sink) warnRetention(m *mirror, lag uint64, age float64) {
	r := s.cfg.Retention
	near := (r.MaxAge > 0 && age > r.MaxAge.Seconds()/2) || (r.MaxEventsPerWorld > 0 && lag > r.MaxEventsPerWorld/2)
	if near && !m.nearPrune {
		s.log.Warn("the mirror lags by more than half of the event archive's retention: events not mirrored yet will be pruned if it does not catch up",
			"world", m.world, "lag_events", lag, "lag_seconds", age, "archive_max_age", r.MaxAge, "archive_max_events", r.MaxEventsPerWorld)
	}
	m.nearPrune = near
}

// stopAll stops every mirror and waits for them.
func (s *Sink) stopAll() {
	for id, m := range s.mirrors {
		m.cancel()
		s.m.forget(id)
	}
	s.wg.Wait()
	s.mirrors = nil
	s.m.worlds.Set(0)
}

// backoff doubles a wait from RetryMin up to RetryMax.
type backoff struct{ wait, max time.Duration }

func (s *Sink) backoff() backoff { return backoff{wait: s.cfg.RetryMin, max: s.cfg.RetryMax} }

// sleep waits the current wait (false if ctx ends first) and doubles it.
func (b *backoff) sleep(ctx context.Context) bool {
	t := time.NewTimer(b.wait)
	defer t.Stop()
	b.wait = min(2*b.wait, b.max)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
