package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink posts the committed events of the worlds this node leads to a
// webhook. Run it on every node; see the package doc for who posts what.
// Its loop per world is a feed.Follower's; what is its own is the signed
// POST of each batch and the checkpoint (export.go).
type Sink struct {
	cfg    Config
	src    Source
	m      *metrics
	log    *slog.Logger
	client *http.Client
	cp     *checkpoint
	f      *feed.Follower[*export]
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
	s := &Sink{
		cfg: cfg, src: src, m: m, cp: cp,
		log:    cfg.Logger.With("component", "webhook"),
		client: &http.Client{Timeout: cfg.Timeout},
	}
	var except []string
	if cfg.Positions != nil {
		except = []string{feed.PositionsWorld} // its writes would be exported, and write positions again
	}
	s.f, err = feed.NewFollower(feed.FollowConfig{
		Worlds: cfg.Worlds, Reserved: cfg.Reserved, Except: except, BatchSize: cfg.BatchSize, Linger: cfg.Linger, CheckInterval: cfg.CheckInterval,
		RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, Logger: s.log,
	}, src, feed.Hooks[*export]{
		Start: func(world string) *export {
			s.log.Info("leading world's group: export started", "world", world, "from", s.cp.get(world)+1)
			return &export{s: s, world: world}
		},
		Fail: func(_ string, e *export, err error, in time.Duration) { e.fail(err, in) },
		Check: func(world string, e *export, w fsm.WorldInfo) {
			s.m.Publish(world, s.cp.get(world), w.Seq, e.gap.Load())
		},
		Stop:     func(world string, _ *export) { s.m.Forget(world) },
		Followed: s.m.Followed,
		Checked:  feed.PruneHook(cfg.Positions, src, s.log),
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return s, nil
}

// Position returns the seq up to which the receiver accepted every event
// of world, as the checkpoint holds it.
func (s *Sink) Position(world string) uint64 { return s.cp.get(world) }

// Run exports until ctx ends, then stops every world's export and returns
// nil; call it once. It retries every failure with backoff and never
// gives up.
func (s *Sink) Run(ctx context.Context) error { return s.f.Run(ctx) }

// backoff returns the backoff of a batch's retries, from RetryMin up to
// RetryMax, jittered.
func (s *Sink) backoff() feed.Backoff { return feed.NewBackoff(s.cfg.RetryMin, s.cfg.RetryMax) }
