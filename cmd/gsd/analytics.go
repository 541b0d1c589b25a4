package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/files"
	"github.com/gsd-dev/gsd/sink/webhook"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// webhookSecretEnv holds the webhook's signing secret when
// --webhook-secret-file is not given, so it stays out of the process list.
const webhookSecretEnv = "GSD_WEBHOOK_SECRET"

// analyticsOptions are the analytics export's flags (docs/INTEGRATIONS.md);
// with no --webhook-url and no --export-dir each export stays off.
type analyticsOptions struct {
	exportDir      string
	exportWorlds   []string
	exportMaxBytes int64
	exportMaxAge   time.Duration

	webhookURL        string
	webhookWorlds     []string
	webhookKeyID      string
	webhookSecretFile string
	webhookBatch      int

	positionsEvery    uint64
	positionsInterval time.Duration
}

func (a *analyticsOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&a.webhookURL, "webhook-url", "", "POST committed events in signed batches to this URL (default: off; see docs/INTEGRATIONS.md and docs/EVENTS.md)")
	f.StringSliceVar(&a.webhookWorlds, "webhook-worlds", nil, "worlds the webhook exports (comma-separated; default: all but gsd's own, gsd.*)")
	f.StringVar(&a.webhookKeyID, "webhook-key-id", "gsd", "key id sent in X-Gsd-Key-Id with every webhook batch")
	f.StringVar(&a.webhookSecretFile, "webhook-secret-file", "", "file holding the webhook's HMAC-SHA256 secret (default: $"+webhookSecretEnv+")")
	f.IntVar(&a.webhookBatch, "webhook-batch", webhook.DefaultConfig().BatchSize, "most events in one webhook batch")
	f.Uint64Var(&a.positionsEvery, "export-positions-every", 100, "store the webhook's and files export's positions in the cluster (world gsd.sinks) at least every this many events (the files export: at each finished file), so a world's new leader resumes there (at-least-once: it repeats at most these); 0: node-local files only")
	f.DurationVar(&a.positionsInterval, "export-positions-interval", 5*time.Second, "store the webhook's position in the cluster at least this often while it moves")
	d := files.DefaultConfig()
	f.StringVar(&a.exportDir, "export-dir", "", "write committed events into rotating gzip NDJSON files in this directory (relative: in the data dir; default: off; see docs/EVENTS.md)")
	f.StringSliceVar(&a.exportWorlds, "export-worlds", nil, "worlds exported to --export-dir (comma-separated; default: all but gsd's own, gsd.*)")
	f.Int64Var(&a.exportMaxBytes, "export-max-bytes", d.MaxBytes, "rotate an export file after this many uncompressed bytes")
	f.DurationVar(&a.exportMaxAge, "export-max-age", d.MaxAge, "rotate an export file this long after its first event")
}

// filesConfig returns the files export's config, or ok false when it is off.
func (a *analyticsOptions) filesConfig(dataDir string, log *slog.Logger) (cfg files.Config, ok bool, err error) {
	if a.exportDir == "" {
		if len(a.exportWorlds) > 0 {
			return cfg, false, errors.New("--export-worlds needs --export-dir")
		}
		return cfg, false, nil
	}
	cfg = files.DefaultConfig()
	cfg.Dir = a.exportDir
	if !filepath.IsAbs(cfg.Dir) {
		cfg.Dir = filepath.Join(dataDir, cfg.Dir)
	}
	cfg.Worlds, cfg.MaxBytes, cfg.MaxAge, cfg.Logger = a.exportWorlds, a.exportMaxBytes, a.exportMaxAge, log
	if err := cfg.Validate(); err != nil {
		return cfg, false, fmt.Errorf("--export-*: %w", err)
	}
	return cfg, true, nil
}

// webhookConfig returns the webhook's config, or ok false when it is off.
func (a *analyticsOptions) webhookConfig(dataDir string, log *slog.Logger) (cfg webhook.Config, ok bool, err error) {
	if a.webhookURL == "" {
		if len(a.webhookWorlds) > 0 || a.webhookSecretFile != "" {
			return cfg, false, errors.New("--webhook-worlds and --webhook-secret-file need --webhook-url")
		}
		return cfg, false, nil
	}
	secret, err := webhookSecret(a.webhookSecretFile, webhookSecretEnv, "--webhook-url", "--webhook-secret-file")
	if err != nil {
		return cfg, false, err
	}
	cfg = webhook.DefaultConfig()
	cfg.URL, cfg.Worlds, cfg.KeyID, cfg.Secret, cfg.BatchSize = a.webhookURL, a.webhookWorlds, a.webhookKeyID, secret, a.webhookBatch
	cfg.Dir, cfg.Logger = dataDir, log
	if err := cfg.Validate(); err != nil {
		return cfg, false, fmt.Errorf("--webhook-*: %w", err)
	}
	return cfg, true, nil
}

// check reports bad analytics flags before the node starts.
func (a *analyticsOptions) check(dataDir string) error {
	if dataDir == "" {
		dataDir = "." // checked for its own sake elsewhere
	}
	_, _, err := a.webhookConfig(dataDir, slog.Default())
	_, _, ferr := a.filesConfig(dataDir, slog.Default())
	return errors.Join(err, ferr)
}

// start runs the analytics exports over st, or over every group of the
// node's shard map when groups is not nil, until the returned stop is
// called (a no-op when they are off; idempotent). Like the pg sink they
// export a world only while this node leads its group.
func (a *analyticsOptions) start(dataDir string, st *store.Store, groups *shard.FeedSource, reg prometheus.Registerer, log *slog.Logger) (stop func(), err error) {
	var runs []func(context.Context) error
	wcfg, on, err := a.webhookConfig(dataDir, log)
	if err != nil {
		return nil, err
	}
	if on {
		if wcfg.Positions, err = a.replicated("webhook", st, groups); err != nil {
			return nil, err
		}
		s, err := webhook.New(wcfg, sinkSource(st, groups), reg)
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		runs = append(runs, s.Run)
		log.Info("webhook export on", "url", wcfg.URL, "worlds", wcfg.Worlds, "key_id", wcfg.KeyID)
	}
	fcfg, on, err := a.filesConfig(dataDir, log)
	if err != nil {
		return nil, err
	}
	if on {
		if fcfg.Positions, err = a.replicated("files", st, groups); err != nil {
			return nil, err
		}
		s, err := files.New(fcfg, sinkSource(st, groups), reg)
		if err != nil {
			return nil, fmt.Errorf("files export: %w", err)
		}
		runs = append(runs, s.Run)
		log.Info("files export on", "dir", fcfg.Dir, "worlds", fcfg.Worlds, "max_bytes", fcfg.MaxBytes, "max_age", fcfg.MaxAge)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				log.Error("analytics export stopped", "err", err)
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }, nil
}

// replicated returns sink's replicated positions (feed.Replicated): in
// each world's own group (st without a shard map); nil with
// --export-positions-every 0.
func (a *analyticsOptions) replicated(sink string, st *store.Store, groups *shard.FeedSource) (*feed.Replicated, error) {
	if a.positionsEvery == 0 {
		return nil, nil
	}
	group := func(string) (feed.PositionGroup, error) { return st, nil }
	if groups != nil {
		group = func(world string) (feed.PositionGroup, error) { return groups.Group(world) }
	}
	rep, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: sink, Writer: st.Status().ID,
		Every: a.positionsEvery, Interval: a.positionsInterval}, group)
	if err != nil {
		return nil, fmt.Errorf("--export-positions-*: %w", err)
	}
	return rep, nil
}

// webhookSecret returns a webhook's HMAC secret: file's content, trimmed,
// when file is set, else $env; the error names the flag that needs it
// (needer) and the one that gives it (fileFlag).
func webhookSecret(file, env, needer, fileFlag string) ([]byte, error) {
	secret := os.Getenv(env)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fileFlag, err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return nil, fmt.Errorf("%s needs a secret: %s or $%s", needer, fileFlag, env)
	}
	return []byte(secret), nil
}
