package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/pg"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// pgSinkEnv holds the sink's DSN when --pg-sink-dsn is not given, so that
// a password in it stays out of the process list.
const pgSinkEnv = "GSD_PG_SINK_DSN"

// pgSinkOptions are the PostgreSQL sink's flags; with no DSN it stays off.
type pgSinkOptions struct {
	dsn    string
	worlds []string
	schema string
}

func (p *pgSinkOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&p.dsn, "pg-sink-dsn", "", "mirror committed events into this PostgreSQL database (libpq key=value or URL; default: $"+pgSinkEnv+", else off; see docs/INTEGRATIONS.md)")
	f.StringSliceVar(&p.worlds, "pg-sink-worlds", nil, "worlds the PostgreSQL sink mirrors (comma-separated; default: all but gsd's own, gsd.*)")
	f.StringVar(&p.schema, "pg-sink-schema", "gsd", "PostgreSQL schema that holds the sink's tables (created and migrated by gsd)")
}

// config returns the sink's config, or ok false when the sink is off.
func (p *pgSinkOptions) config(log *slog.Logger) (cfg pg.Config, ok bool, err error) {
	dsn := p.dsn
	if dsn == "" {
		dsn = os.Getenv(pgSinkEnv)
	}
	if dsn == "" {
		if len(p.worlds) > 0 {
			return cfg, false, errors.New("--pg-sink-worlds needs --pg-sink-dsn")
		}
		return cfg, false, nil
	}
	cfg = pg.DefaultConfig()
	cfg.DSN, cfg.Worlds, cfg.Schema, cfg.Logger = dsn, p.worlds, p.schema, log
	if err := cfg.Validate(); err != nil {
		return cfg, false, fmt.Errorf("--pg-sink-*: %w", err)
	}
	return cfg, true, nil
}

// start runs the sink over st, or over every group of the node's shard
// map when groups is not nil, whose archives keep events for retention,
// until the returned stop is called (a no-op when the sink is off;
// idempotent).
func (p *pgSinkOptions) start(st *store.Store, groups *shard.FeedSource, retention store.Retention, reg prometheus.Registerer, log *slog.Logger) (stop func(), err error) {
	cfg, on, err := p.config(log)
	if err != nil || !on {
		return func() {}, err
	}
	cfg.Retention = retention // to warn before unmirrored events are pruned
	src := pg.NewStoreSource(st)
	if groups != nil {
		src = pg.WithPlayers(feed.NewGroupsSource(groups), groups)
	}
	s, err := pg.New(cfg, src, reg)
	if err != nil {
		return nil, fmt.Errorf("pg sink: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			log.Error("pg sink stopped", "err", err)
		}
	}()
	log.Info("pg sink on", "schema", cfg.Schema, "worlds", cfg.Worlds)
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, nil
}

// feedSource returns the sinks' source over every group the node runs: a
// world's sink runs on its group's leader (shard.FeedSource).
func (g *shardGroups) feedSource() *shard.FeedSource {
	switch b := g.backend.(type) {
	case *shard.Backend:
		return shard.NewFeedSource(b)
	case metaBackend:
		return shard.NewFeedSource(b.Backend)
	}
	return nil
}

// sinkSource returns what a sink reads: st's one group, or every group of
// the node's shard map when groups is not nil.
func sinkSource(st *store.Store, groups *shard.FeedSource) feed.Source {
	if groups != nil {
		return feed.NewGroupsSource(groups)
	}
	return feed.NewStoreSource(st)
}
