package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/gsd-dev/gsd/sink/webhook"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// webhookSecretEnv holds the webhook's signing secret when
// --webhook-secret-file is not given, so it stays out of the process list.
const webhookSecretEnv = "GSD_WEBHOOK_SECRET"

// analyticsOptions are the analytics export's flags (docs/INTEGRATIONS.md);
// with no --webhook-url the export stays off.
type analyticsOptions struct {
	webhookURL        string
	webhookWorlds     []string
	webhookKeyID      string
	webhookSecretFile string
	webhookBatch      int
}

func (a *analyticsOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&a.webhookURL, "webhook-url", "", "POST committed events in signed batches to this URL (default: off; see docs/INTEGRATIONS.md and docs/EVENTS.md)")
	f.StringSliceVar(&a.webhookWorlds, "webhook-worlds", nil, "worlds the webhook exports (comma-separated; default: all)")
	f.StringVar(&a.webhookKeyID, "webhook-key-id", "gsd", "key id sent in X-Gsd-Key-Id with every webhook batch")
	f.StringVar(&a.webhookSecretFile, "webhook-secret-file", "", "file holding the webhook's HMAC-SHA256 secret (default: $"+webhookSecretEnv+")")
	f.IntVar(&a.webhookBatch, "webhook-batch", webhook.DefaultConfig().BatchSize, "most events in one webhook batch")
}

// webhookConfig returns the webhook's config, or ok false when it is off.
func (a *analyticsOptions) webhookConfig(dataDir string, log *slog.Logger) (cfg webhook.Config, ok bool, err error) {
	if a.webhookURL == "" {
		if len(a.webhookWorlds) > 0 || a.webhookSecretFile != "" {
			return cfg, false, errors.New("--webhook-worlds and --webhook-secret-file need --webhook-url")
		}
		return cfg, false, nil
	}
	secret := os.Getenv(webhookSecretEnv)
	if a.webhookSecretFile != "" {
		b, err := os.ReadFile(a.webhookSecretFile)
		if err != nil {
			return cfg, false, fmt.Errorf("--webhook-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return cfg, false, fmt.Errorf("--webhook-url needs a secret: --webhook-secret-file or $%s", webhookSecretEnv)
	}
	cfg = webhook.DefaultConfig()
	cfg.URL, cfg.Worlds, cfg.KeyID, cfg.Secret, cfg.BatchSize = a.webhookURL, a.webhookWorlds, a.webhookKeyID, []byte(secret), a.webhookBatch
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
	return err
}

// start runs the analytics export over st until the returned stop is
// called (a no-op when it is off; idempotent). Like the pg sink it exports
// only while this node leads the group.
func (a *analyticsOptions) start(dataDir string, st *store.Store, reg prometheus.Registerer, log *slog.Logger) (stop func(), err error) {
	cfg, on, err := a.webhookConfig(dataDir, log)
	if err != nil || !on {
		return func() {}, err
	}
	s, err := webhook.New(cfg, webhook.NewStoreSource(st), reg)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			log.Error("webhook export stopped", "err", err)
		}
	}()
	log.Info("webhook export on", "url", cfg.URL, "worlds", cfg.Worlds, "key_id", cfg.KeyID)
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, nil
}
