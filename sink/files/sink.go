package files

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink writes the committed events of the worlds this node leads into
// rotating files. Run it on every node; see the package doc. Its loop per
// world is a feed.Follower's; what is its own is the files (export.go).
type Sink struct {
	cfg Config
	src Source
	m   *metrics
	log *slog.Logger
	f   *feed.Follower[*export]

	mu  sync.Mutex
	pos map[string]uint64 // per world: every event up to here is in a finished file
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
	s := &Sink{cfg: cfg, src: src, m: m, log: cfg.Logger.With("component", "files"), pos: make(map[string]uint64)}
	var except []string
	if cfg.Positions != nil {
		except = []string{feed.PositionsWorld} // its writes would be exported, and write positions again
	}
	s.f, err = feed.NewFollower(feed.FollowConfig{
		Worlds: cfg.Worlds, Reserved: cfg.Reserved, Except: except, CheckInterval: cfg.CheckInterval,
		RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, Logger: s.log,
	}, src, feed.Hooks[*export]{
		Start: func(world string) *export {
			s.log.Info("leading world's group: files export started", "world", world)
			return &export{s: s, world: world}
		},
		Fail: func(_ string, e *export, err error, in time.Duration) { e.fail(err, in) },
		Check: func(world string, e *export, w fsm.WorldInfo) {
			s.m.Publish(world, s.Position(world), w.Seq, e.gap.Load())
		},
		Stop:     func(world string, _ *export) { s.m.Forget(world) },
		Followed: s.m.Followed,
		Checked:  feed.PruneHook(cfg.Positions, src, s.log),
	})
	if err != nil {
		return nil, fmt.Errorf("files export: %w", err)
	}
	return s, nil
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
func (s *Sink) Run(ctx context.Context) error { return s.f.Run(ctx) }
