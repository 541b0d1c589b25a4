package files

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gsd-dev/gsd/sink/feed"
)

// Config configures a Sink.
type Config struct {
	// Dir receives the files (required; created if missing).
	Dir string
	// Worlds limits the export to these worlds; empty exports every world.
	Worlds []string
	// Reserved exports gsd's own worlds (feed.Reserved: gsd.sinks,
	// gsd.relays, gsd.moderation) too when Worlds is empty; by default
	// only Worlds that names one exports it.
	Reserved bool
	// MaxBytes rotates a file once this many uncompressed bytes are in it.
	MaxBytes int64
	// MaxAge rotates a file this long after its first event, so events
	// reach a finished file within MaxAge even when a world is quiet.
	MaxAge time.Duration
	// CheckInterval is how often the sink looks for worlds it leads or no
	// longer leads.
	CheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff after a failure.
	RetryMin, RetryMax time.Duration
	// Positions, when not nil, keeps the export's position in the store
	// each time a file is finished (feed.Replicated), so that a group's
	// new leader goes on after the old one's last finished file instead
	// of from its own directory's. The export then never exports
	// feed.PositionsWorld.
	Positions *feed.Replicated

	Logger *slog.Logger
}

// DefaultConfig returns a Config with everything but Dir set.
func DefaultConfig() Config {
	return Config{
		MaxBytes:      64 << 20,
		MaxAge:        time.Minute,
		CheckInterval: 500 * time.Millisecond,
		RetryMin:      200 * time.Millisecond,
		RetryMax:      30 * time.Second,
		Logger:        slog.Default(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("files export: Dir is required"))
	}
	for _, w := range c.Worlds {
		if w == "" {
			errs = append(errs, errors.New("files export: empty world name"))
		}
	}
	if c.MaxBytes < 1 {
		errs = append(errs, fmt.Errorf("files export: max bytes %d: want at least 1", c.MaxBytes))
	}
	if c.MaxAge <= 0 {
		errs = append(errs, errors.New("files export: max age must be positive"))
	}
	if c.CheckInterval <= 0 {
		errs = append(errs, errors.New("files export: check interval must be positive"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("files export: want 0 < RetryMin <= RetryMax"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("files export: Logger is required"))
	}
	return errors.Join(errs...)
}
