package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/sink/webhook"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// flagsHookSecretEnv holds the flags webhook's signing secret when
// --flags-webhook-secret-file is not given.
const flagsHookSecretEnv = "GSD_FLAGS_WEBHOOK_SECRET"

// flagsHookDir is the flags webhook's checkpoint directory in the data
// dir (apart from the analytics webhook's checkpoint).
const flagsHookDir = "flags-webhook"

// flagsHookOptions post every new anti-cheat flag and every review of
// one to a webhook (docs/ANTICHEAT.md): the moderation world's committed
// events, through sink/webhook (signed, batched, retried, checkpointed).
// Every node runs it; the leader of the moderation world posts.
type flagsHookOptions struct {
	url        string
	keyID      string
	secretFile string
}

func (h *flagsHookOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&h.url, "flags-webhook", "", "POST every anti-cheat flag and review (the moderation world's committed events) in signed batches to this URL (default: off; docs/ANTICHEAT.md)")
	f.StringVar(&h.keyID, "flags-webhook-key-id", "gsd", "key id sent in X-Gsd-Key-Id with every --flags-webhook batch")
	f.StringVar(&h.secretFile, "flags-webhook-secret-file", "", "file holding --flags-webhook's HMAC-SHA256 secret (default: $"+flagsHookSecretEnv+")")
}

// config returns the flags webhook's config, or ok false when it is off.
func (h *flagsHookOptions) config(dataDir string, log *slog.Logger) (cfg webhook.Config, ok bool, err error) {
	if h.url == "" {
		if h.secretFile != "" {
			return cfg, false, errors.New("--flags-webhook-secret-file needs --flags-webhook")
		}
		return cfg, false, nil
	}
	secret, err := webhookSecret(h.secretFile, flagsHookSecretEnv, "--flags-webhook", "--flags-webhook-secret-file")
	if err != nil {
		return cfg, false, err
	}
	cfg = webhook.DefaultConfig()
	cfg.URL, cfg.KeyID, cfg.Secret, cfg.Worlds = h.url, h.keyID, secret, []string{moderation.World}
	cfg.Dir, cfg.Logger = filepath.Join(dataDir, flagsHookDir), log.With("export", "flags")
	if err := cfg.Validate(); err != nil {
		return cfg, false, fmt.Errorf("--flags-webhook: %w", err)
	}
	return cfg, true, nil
}

// check reports bad flags before the node starts.
func (h *flagsHookOptions) check(dataDir string) error {
	if dataDir == "" {
		dataDir = "." // checked for its own sake elsewhere
	}
	_, _, err := h.config(dataDir, slog.Default())
	return err
}

// start posts the moderation world's events until the returned stop is
// called (a no-op when off; idempotent). Its gsd_webhook_* metrics (world
// gsd.moderation) are registered with reg unless the analytics webhook
// (--webhook-url) has them: then its failures are only logged.
func (h *flagsHookOptions) start(dataDir string, st *store.Store, groups *shard.FeedSource, analytics bool, reg prometheus.Registerer, log *slog.Logger) (func(), error) {
	cfg, on, err := h.config(dataDir, log)
	if err != nil || !on {
		return func() {}, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("--flags-webhook: %w", err)
	}
	if analytics {
		reg = nil
	}
	s, err := webhook.New(cfg, sinkSource(st, groups), reg) // under a shard map, wherever the moderation world is
	if err != nil {
		return nil, fmt.Errorf("--flags-webhook: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			log.Error("flags webhook stopped", "err", err)
		}
	}()
	log.Info("flags webhook on", "url", cfg.URL, "key_id", cfg.KeyID)
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, nil
}
