package pg

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions: migrations[i] takes the schema
// from version i to i+1. Append only; never edit a released one. {S} is the
// schema's name.
var migrations = []string{
	// 1: events and the mirror's position per world incarnation.
	`CREATE TABLE {S}.worlds (
		world       text        NOT NULL,
		incarnation bigint      NOT NULL,
		seq         bigint      NOT NULL,
		updated_at  timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (world, incarnation)
	);
	COMMENT ON TABLE {S}.worlds IS 'gsd: one row per mirrored world incarnation; every event of it up to seq is in events';
	CREATE TABLE {S}.events (
		world       text    NOT NULL,
		incarnation bigint  NOT NULL,
		seq         bigint  NOT NULL,
		raft_index  bigint  NOT NULL,
		time_ns     bigint  NOT NULL,
		leader_time timestamptz GENERATED ALWAYS AS (to_timestamp(time_ns::double precision / 1e9)) STORED,
		player      text    NOT NULL,
		client_seq  numeric(20) NOT NULL,
		priority    text    NOT NULL,
		status      text    NOT NULL,
		reason      text    NOT NULL,
		changes     jsonb   NOT NULL,
		PRIMARY KEY (world, incarnation, seq)
	);
	COMMENT ON TABLE {S}.events IS 'gsd: committed events of mirrored worlds, one row per (world, incarnation, seq)'`,
	// 2: players' critical data, one row per player of a world
	// incarnation, replaced only by a newer version (players.go).
	`CREATE TABLE {S}.players (
		world       text        NOT NULL,
		incarnation bigint      NOT NULL,
		player      text        NOT NULL,
		version     bigint      NOT NULL,
		data        jsonb       NOT NULL,
		updated_at  timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (world, incarnation, player)
	);
	COMMENT ON TABLE {S}.players IS 'gsd: critical player data of mirrored worlds at its newest mirrored version; {} once every key was deleted'`,
}

// SchemaVersion is the schema version this binary writes.
var SchemaVersion = len(migrations)

// migrate brings the schema up to SchemaVersion. Every node's sink runs it
// at start; an advisory lock lets one at a time in, so the others find the
// work done.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (int, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('gsd sink migrate ' || $1))`, schema); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, expand(`CREATE SCHEMA IF NOT EXISTS {S};
		CREATE TABLE IF NOT EXISTS {S}.schema_version (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`, schema)); err != nil {
		return 0, err
	}
	var cur int
	if err := tx.QueryRow(ctx, expand(`SELECT coalesce(max(version), 0) FROM {S}.schema_version`, schema)).Scan(&cur); err != nil {
		return 0, err
	}
	if cur > SchemaVersion {
		return cur, fmt.Errorf("%w: schema %s is at version %d, this gsd knows up to %d", ErrSchemaNewer, schema, cur, SchemaVersion)
	}
	for v := cur; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, expand(migrations[v], schema)); err != nil {
			return cur, fmt.Errorf("migrate schema %s to version %d: %w", schema, v+1, err)
		}
		if _, err := tx.Exec(ctx, expand(`INSERT INTO {S}.schema_version (version) VALUES ($1)`, schema), v+1); err != nil {
			return cur, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return cur, err
	}
	return SchemaVersion, nil
}

// expand puts the schema's name into a statement; Config.Validate has
// checked it is a plain identifier.
func expand(sql, schema string) string {
	return strings.ReplaceAll(sql, "{S}", pgx.Identifier{schema}.Sanitize())
}
