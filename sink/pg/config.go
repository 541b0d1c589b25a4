package pg

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/gsd-dev/gsd/store"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures a Sink.
type Config struct {
	// DSN is the database's libpq connection string or URL (required).
	DSN string
	// Schema is the PostgreSQL schema that holds the sink's tables; gsd
	// creates it and migrates it (lower-case letters, digits and _).
	Schema string
	// Worlds limits the mirror to these worlds; empty mirrors every world.
	Worlds []string
	// Reserved mirrors gsd's own worlds (feed.Reserved: gsd.sinks,
	// gsd.relays, gsd.moderation) too when Worlds is empty; by default
	// only Worlds that names one mirrors it.
	Reserved bool
	// BatchSize bounds the events written in one transaction.
	BatchSize int
	// Linger is how long the sink waits for more events to fill a batch
	// once it has some (0: write what one read returns).
	Linger time.Duration
	// CheckInterval is how often the sink looks for worlds it leads or no
	// longer leads, and updates the lag metrics.
	CheckInterval time.Duration
	// RetryMin and RetryMax bound the backoff after a failed write or a
	// database that cannot be reached.
	RetryMin, RetryMax time.Duration
	// MaxConns bounds the sink's connections to the database.
	MaxConns int32
	// Timeout bounds each call to the database (a batch's transaction, a
	// read, the migration), so a connection that died silently fails the
	// call and is retried instead of holding the mirror up.
	Timeout time.Duration

	// Retention is the node's event archive retention (store.Config's),
	// so that the sink warns before the events it has not mirrored are
	// pruned; zero bounds mean none.
	Retention store.Retention

	Logger *slog.Logger
}

// DefaultConfig returns a Config with everything but DSN set.
func DefaultConfig() Config {
	return Config{
		Schema:        "gsd",
		BatchSize:     1024,
		Linger:        5 * time.Millisecond,
		CheckInterval: 500 * time.Millisecond,
		RetryMin:      100 * time.Millisecond,
		RetryMax:      5 * time.Second,
		MaxConns:      4,
		Timeout:       30 * time.Second,
		Logger:        slog.Default(),
	}
}

// schemaName is what Schema may be: an identifier that needs no quoting.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("pg sink: DSN is required"))
	} else if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		errs = append(errs, fmt.Errorf("pg sink: DSN: %w", err))
	}
	if !schemaName.MatchString(c.Schema) {
		errs = append(errs, fmt.Errorf("pg sink: schema %q: want 1..63 of a-z, 0-9 and _, not starting with a digit", c.Schema))
	}
	for _, w := range c.Worlds {
		if w == "" {
			errs = append(errs, errors.New("pg sink: empty world name"))
		}
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatch {
		errs = append(errs, fmt.Errorf("pg sink: batch size %d: want 1..%d", c.BatchSize, maxBatch))
	}
	if c.Linger < 0 {
		errs = append(errs, errors.New("pg sink: linger must not be negative"))
	}
	if c.CheckInterval <= 0 {
		errs = append(errs, errors.New("pg sink: check interval must be positive"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("pg sink: want 0 < RetryMin <= RetryMax"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("pg sink: Timeout must be positive"))
	}
	if c.MaxConns < 1 {
		errs = append(errs, errors.New("pg sink: MaxConns must be positive"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("pg sink: Logger is required"))
	}
	return errors.Join(errs...)
}

// maxBatch bounds BatchSize: one transaction's arrays stay well below
// PostgreSQL's 1 GB field limit.
const maxBatch = 65536
