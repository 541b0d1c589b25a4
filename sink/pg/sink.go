package pg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink mirrors the committed events of the worlds this node leads into
// PostgreSQL. Run it on every node; see the package doc for who writes
// what. Its loop per world is a feed.Follower's; what is its own is the
// transaction of each batch (mirror.go).
type Sink struct {
	cfg Config
	src Source
	m   *metrics
	log *slog.Logger
	f   *feed.Follower[*mirror]
	// players mirrors player data (players.go); nil when src does not
	// read it.
	players *players
	// mirrors holds each world's events mirror while the follower runs
	// it (world → *mirror): the player mirror writes a world only once
	// its events mirror resumed that incarnation.
	mirrors sync.Map

	// owned by Run
	db *db
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
	s := &Sink{cfg: cfg, src: src, m: m, log: cfg.Logger.With("component", "pgsink")}
	s.f, err = feed.NewFollower(feed.FollowConfig{
		Worlds: cfg.Worlds, Reserved: cfg.Reserved, BatchSize: cfg.BatchSize, Linger: cfg.Linger, CheckInterval: cfg.CheckInterval,
		RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, Logger: s.log,
	}, src, feed.Hooks[*mirror]{
		Start: func(world string) *mirror {
			s.log.Info("leading world's group: mirror started", "world", world)
			m := &mirror{s: s, world: world}
			s.mirrors.Store(world, m)
			return m
		},
		Fail:  func(_ string, m *mirror, err error, in time.Duration) { m.fail(err, in) },
		Check: func(_ string, m *mirror, w fsm.WorldInfo) { s.publish(m, w.Seq, time.Now()) },
		Stop: func(world string, m *mirror) {
			s.mirrors.CompareAndDelete(world, m)
			s.m.forget(world)
		},
		Followed: s.m.Followed,
	})
	if err != nil {
		return nil, fmt.Errorf("pg sink: %w", err)
	}
	if ps, ok := src.(PlayerSource); ok {
		s.players = &players{s: s, src: ps}
	}
	return s, nil
}

// follows reports whether this node mirrors world now: a world of
// Config.Worlds (any but gsd's own when empty, feed.Selected) whose group
// it leads.
func (s *Sink) follows(world string) bool {
	return feed.Selected(world, s.cfg.Worlds, s.cfg.Reserved) && s.src.Leads(world)
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
	if s.players == nil {
		s.log.Warn("the source does not read player data: mirroring events only")
		return s.f.Run(ctx)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.players.run(ctx)
	}()
	err = s.f.Run(ctx)
	<-done
	return err
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
		s.log.Error("cannot migrate the sink's schema; retrying", "schema", s.cfg.Schema, "err", err, "in", b.Wait())
		if !b.Sleep(ctx) {
			return false
		}
	}
}

// publish sets a world's gauges from its mirror's position (once the
// mirror has read it) and the node's seq of the world.
func (s *Sink) publish(m *mirror, seq uint64, now time.Time) {
	pos, ok := m.position()
	if !ok {
		s.m.SetGap(m.world, m.gap.Load())
		return
	}
	s.m.Publish(m.world, pos, seq, m.gap.Load())
	lag := seq - min(pos, seq)
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

// backoff returns the sink's backoff, from RetryMin up to RetryMax.
func (s *Sink) backoff() feed.Backoff { return feed.NewBackoff(s.cfg.RetryMin, s.cfg.RetryMax) }
