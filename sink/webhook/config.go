package webhook

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/gsd-dev/gsd/sink/feed"
)

// Config configures a Sink.
type Config struct {
	// URL receives the batches (http or https; required).
	URL string
	// KeyID names Secret in the X-Gsd-Key-Id header, so that a receiver
	// can rotate keys (required; printable ASCII, no spaces).
	KeyID string
	// Secret is the HMAC-SHA256 key that signs every batch (required, at
	// least 16 bytes).
	Secret []byte
	// Dir holds the checkpoint file (required; gsd uses its data dir).
	Dir string
	// Worlds limits the export to these worlds; empty exports every world.
	Worlds []string
	// Reserved exports gsd's own worlds (feed.Reserved: gsd.sinks,
	// gsd.relays, gsd.moderation) too when Worlds is empty; by default
	// only Worlds that names one exports it.
	Reserved bool
	// BatchSize bounds the events in one batch.
	BatchSize int
	// Linger is how long the sink waits for more events to fill a batch
	// once it has some (0: send what one read returns).
	Linger time.Duration
	// CheckInterval is how often the sink looks for worlds it leads or no
	// longer leads, and updates the lag metrics.
	CheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff after a failed batch; each
	// wait is jittered into [wait/2, wait].
	RetryMin, RetryMax time.Duration
	// Timeout bounds one POST, its answer included.
	Timeout time.Duration
	// Positions, when not nil, keeps the export's positions in the store
	// too (feed.Replicated), so that a group's new leader resumes where
	// the old one stopped; the checkpoint file in Dir stays this node's
	// fallback. The export then never exports feed.PositionsWorld.
	Positions *feed.Replicated

	Logger *slog.Logger
}

// DefaultConfig returns a Config with everything but URL, KeyID, Secret
// and Dir set.
func DefaultConfig() Config {
	return Config{
		BatchSize:     500,
		Linger:        50 * time.Millisecond,
		CheckInterval: 500 * time.Millisecond,
		RetryMin:      200 * time.Millisecond,
		RetryMax:      30 * time.Second,
		Timeout:       10 * time.Second,
		Logger:        slog.Default(),
	}
}

// maxBatch bounds BatchSize so one request body stays a few MB.
const maxBatch = 10000

// minSecret is the shortest Secret accepted.
const minSecret = 16

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("webhook: URL is required"))
	} else if u, err := url.Parse(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("webhook: URL: %w", err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("webhook: URL %q: want an http or https URL with a host", c.URL))
	}
	if c.KeyID == "" {
		errs = append(errs, errors.New("webhook: key id is required"))
	}
	for _, r := range c.KeyID {
		if r <= ' ' || r > '~' {
			errs = append(errs, fmt.Errorf("webhook: key id %q: want printable ASCII without spaces", c.KeyID))
			break
		}
	}
	if len(c.Secret) < minSecret {
		errs = append(errs, fmt.Errorf("webhook: secret of %d bytes: want at least %d", len(c.Secret), minSecret))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("webhook: Dir is required (it holds the checkpoint)"))
	}
	for _, w := range c.Worlds {
		if w == "" {
			errs = append(errs, errors.New("webhook: empty world name"))
		}
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatch {
		errs = append(errs, fmt.Errorf("webhook: batch size %d: want 1..%d", c.BatchSize, maxBatch))
	}
	if c.Linger < 0 {
		errs = append(errs, errors.New("webhook: linger must not be negative"))
	}
	if c.CheckInterval <= 0 {
		errs = append(errs, errors.New("webhook: check interval must be positive"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("webhook: want 0 < RetryMin <= RetryMax"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("webhook: Timeout must be positive"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("webhook: Logger is required"))
	}
	return errors.Join(errs...)
}
