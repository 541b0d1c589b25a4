package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/spectator/registry"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// detectOptions turns the anti-cheat detectors on (docs/ANTICHEAT.md).
// They are off by default. A node evaluates the worlds of the groups it
// leads, so give --detect to every node.
type detectOptions struct {
	on     bool
	config string
}

func (d *detectOptions) flags(f *pflag.FlagSet) {
	f.BoolVar(&d.on, "detect", false, "run the anti-cheat detectors over the committed feed of every world whose group this node leads (give it to every node): flags go to the log, gsd_anticheat_flags_total and the moderation world (GET /v1/moderation/flags); their counts are kept across restarts in detect.ckpt in the data dir; nothing is banned (docs/ANTICHEAT.md)")
	f.StringVar(&d.config, "detect-config", "", "JSON file of the detectors' field names and thresholds over their defaults (docs/ANTICHEAT.md); implies --detect")
}

// detectConfig returns the detectors' config: the defaults, or the
// --detect-config file over them.
func (d *detectOptions) detectConfig() (detect.Config, error) {
	if d.config == "" {
		return detect.DefaultConfig(), nil
	}
	b, err := os.ReadFile(d.config)
	if err != nil {
		return detect.Config{}, usageError{fmt.Errorf("--detect-config: %w", err)}
	}
	c, err := detect.ParseConfig(b)
	if err != nil {
		return detect.Config{}, usageError{fmt.Errorf("--detect-config %s: %w", d.config, err)}
	}
	return c, nil
}

// detectCheckpointFile is the detectors' checkpoint in the data dir.
const detectCheckpointFile = "detect.ckpt"

// start runs the detectors over the worlds of the stores groups returns
// (the node's groups: one, or those of its shard map) until the returned
// stop is called (idempotent); with --detect off it does nothing. They
// keep their checkpoint in dir (detectCheckpointFile: saved every
// Config.Checkpoint and at stop, restored at start; a damaged one is
// logged and the counts rebuilt from the archive). Their flags are
// recorded through w (the edge: on the moderation world's leader) as
// raised by node; a flag still queued at stop is lost here and handed out
// again after a restart, from the checkpoint.
func (d *detectOptions) start(dir string, groups func() []*store.Store, w moderation.Writer, node string, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	if !d.on && d.config == "" {
		return func() {}, nil
	}
	cfg, err := d.detectConfig()
	if err != nil {
		return nil, err
	}
	det, err := detect.New(cfg)
	if err != nil {
		return nil, err
	}
	m, err := detect.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("anticheat metrics: %w", err)
	}
	log = log.With("component", "anticheat")
	rec, err := moderation.NewRecorder(w, node, log)
	if err != nil {
		return nil, err
	}
	if rec.Metrics, err = moderation.NewRecorderMetrics(reg); err != nil {
		return nil, fmt.Errorf("anticheat metrics: %w", err)
	}
	src := detectSource{groups: groups, settle: &settling{log: log, who: "anticheat detectors wait"}}
	r, err := detect.NewRunner(det, src, detect.Sinks{detect.Log{Logger: log}, m, rec}, log)
	if err != nil {
		return nil, err
	}
	r.Metrics = m
	r.Checkpoints = detect.File{Path: filepath.Join(dir, detectCheckpointFile)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	wg.Go(func() { rec.Run(ctx) })
	log.Info("anticheat detectors on")
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}, nil
}

// detectSource is the node's groups as the detectors' Source: every world
// of every group, evaluated where its group is led (detect.Evaluator: on a
// leadership change the new leader's detectors follow the world from
// where they last stopped, or from seq 1, rebuilding the counts from the
// archive); a seq the archive no longer holds is detect.ErrFeedGone, so
// the detectors skip to the oldest events it holds instead of waiting for
// ones that are gone; the moderation world, the detectors' own output, is
// not theirs to judge. It is a detect.Settler: after a restart the
// detectors wait, as the auditor does, until every group replayed the log
// it held at start (until then a group lists its last snapshot's worlds
// and seqs). (sink/feed's multi-group source may replace this adapter
// once both are merged.)
type detectSource struct {
	groups func() []*store.Store
	settle *settling
}

var (
	_ detect.Evaluator = detectSource{}
	_ detect.Settler   = detectSource{}
)

// Settled reports whether the node has groups and every one has applied
// the log it held when first looked at (a node under a shard map has
// none until it knows the map).
func (s detectSource) Settled() bool {
	groups := s.groups()
	return len(groups) > 0 && s.settle.settled(replayers(groups))
}

// Worlds returns the worlds of every group, each once: a world that moved
// to another group stays on the old one, fenced (Moved), until dropped
// there; only the group it moved to serves it.
func (s detectSource) Worlds() []fsm.WorldInfo {
	var out []fsm.WorldInfo
	seen := map[string]bool{}
	for _, st := range s.groups() {
		for _, w := range judged(st.Worlds()) {
			if w.Moved == nil && !seen[w.ID] {
				seen[w.ID] = true
				out = append(out, w)
			}
		}
	}
	return out
}

// group returns the group that serves world (holds it, not moved away).
func (s detectSource) group(world string) (*store.Store, error) {
	for _, st := range s.groups() {
		if w, err := st.World(world); err == nil && w.Moved == nil {
			return st, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
}

// Evaluates reports whether this node leads the group of world.
func (s detectSource) Evaluates(world string) bool {
	st, err := s.group(world)
	return err == nil && st.IsLeader()
}

// judged returns ws without the worlds of gsd's own records: flags,
// sinks' positions, relays.
func judged(ws []fsm.WorldInfo) []fsm.WorldInfo {
	return slices.DeleteFunc(ws, func(w fsm.WorldInfo) bool {
		switch w.ID {
		case moderation.World, feed.PositionsWorld, registry.World: // gsd's own records, not play
			return true
		}
		return false
	})
}

func (s detectSource) Subscribe(world string, from uint64) (fanout.Subscription, error) {
	st, err := s.group(world)
	if err != nil {
		return nil, err
	}
	sub, err := st.Subscribe(world, from)
	if err != nil {
		return nil, feedGone(err)
	}
	return sub, nil
}

// managedGroups is the groups a shard.Manager runs now.
func managedGroups(m *shard.Manager) func() []*store.Store {
	return func() []*store.Store {
		var out []*store.Store
		for _, id := range m.Groups() {
			if st, ok := m.Group(id); ok {
				out = append(out, st)
			}
		}
		return out
	}
}

// feedGone marks store.ErrArchiveGap as detect.ErrFeedGone.
func feedGone(err error) error {
	if errors.Is(err, store.ErrArchiveGap) {
		return fmt.Errorf("%w: %w", detect.ErrFeedGone, err)
	}
	return err
}
