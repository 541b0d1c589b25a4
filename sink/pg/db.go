package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// db is the sink's statements against its schema.
type db struct {
	pool    *pgxpool.Pool
	schema  string
	timeout time.Duration // bounds each call, so a dead connection fails it

	insertEvents, upsertPosition, selectPositions, selectEvent string
	upsertPlayers, selectPlayerVersions                        string
}

func newDB(pool *pgxpool.Pool, schema string, timeout time.Duration) *db {
	return &db{
		pool: pool, schema: schema, timeout: timeout,
		insertEvents: expand(`INSERT INTO {S}.events
			(world, incarnation, seq, raft_index, time_ns, player, client_seq, priority, status, reason, changes)
			SELECT $1, $2, u.seq, u.idx, u.tns, u.player, u.cseq::numeric, u.prio, u.status, u.reason, u.changes::jsonb
			FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
				AS u(seq, idx, tns, player, cseq, prio, status, reason, changes)
			ON CONFLICT (world, incarnation, seq) DO NOTHING`, schema),
		// The position only rises: two nodes that both believe they lead
		// for a moment each write a contiguous run from a stored position,
		// so every event up to the larger position is in the table.
		upsertPosition: expand(`INSERT INTO {S}.worlds AS w (world, incarnation, seq) VALUES ($1, $2, $3)
			ON CONFLICT (world, incarnation) DO UPDATE SET seq = GREATEST(w.seq, EXCLUDED.seq), updated_at = now()`, schema),
		selectPositions: expand(`SELECT incarnation, seq FROM {S}.worlds WHERE world = $1 ORDER BY updated_at DESC, incarnation DESC`, schema),
		selectEvent:     expand(`SELECT raft_index, time_ns FROM {S}.events WHERE world = $1 AND incarnation = $2 AND seq = $3`, schema),
		// A row is replaced only by a newer version of the player's data:
		// a repeated or late write (a node that led a moment ago, a batch
		// retried after a lost commit) leaves the newer row alone.
		upsertPlayers: expand(`INSERT INTO {S}.players AS p (world, incarnation, player, version, data)
			SELECT $1, $2, u.player, u.version, u.data::jsonb
			FROM unnest($3::text[], $4::bigint[], $5::text[]) AS u(player, version, data)
			ON CONFLICT (world, incarnation, player) DO UPDATE
				SET version = EXCLUDED.version, data = EXCLUDED.data, updated_at = now()
				WHERE p.version < EXCLUDED.version`, schema),
		selectPlayerVersions: expand(`SELECT player, version FROM {S}.players WHERE world = $1 AND incarnation = $2`, schema),
	}
}

// position is a world incarnation's stored mirror position.
type position struct {
	incarnation int64
	seq         uint64
}

// positions returns world's incarnations, the most recently written first.
func (d *db) positions(ctx context.Context, world string) ([]position, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	rs, err := d.pool.Query(ctx, d.selectPositions, world)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (position, error) {
		var p position
		var seq int64
		err := r.Scan(&p.incarnation, &seq)
		p.seq = uint64(seq)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read positions of world %s: %w", world, err)
	}
	return out, nil
}

// event returns the Raft index and leader time of a stored event.
func (d *db) event(ctx context.Context, world string, inc int64, seq uint64) (index uint64, timeNs int64, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var idx int64
	err = d.pool.QueryRow(ctx, d.selectEvent, world, inc, int64(seq)).Scan(&idx, &timeNs)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("read world %s event %d: %w", world, seq, err)
	}
	return uint64(idx), timeNs, true, nil
}

// write inserts a batch of a world's events and moves its position to
// last, in one transaction; it returns how many rows were new.
func (d *db) write(ctx context.Context, world string, inc int64, r *rows, last uint64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	var b pgx.Batch
	b.Queue(d.insertEvents, world, inc, r.seq, r.index, r.timeNs, r.player, r.clientSeq, r.priority, r.status, r.reason, r.changes)
	b.Queue(d.upsertPosition, world, inc, int64(last))
	br := tx.SendBatch(ctx, &b)
	tag, err := br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// playerVersions returns the stored data version of each player of a
// world incarnation.
func (d *db) playerVersions(ctx context.Context, world string, inc int64) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	rs, err := d.pool.Query(ctx, d.selectPlayerVersions, world, inc)
	if err != nil {
		return nil, dbErr(fmt.Errorf("read world %s player versions: %w", world, err))
	}
	out := make(map[string]uint64)
	var (
		player  string
		version int64
	)
	_, err = pgx.ForEachRow(rs, []any{&player, &version}, func() error {
		out[player] = uint64(version)
		return nil
	})
	if err != nil {
		return nil, dbErr(fmt.Errorf("read world %s player versions: %w", world, err))
	}
	return out, nil
}

// writePlayers upserts players' rows in one transaction and returns how
// many rows it inserted or replaced.
func (d *db) writePlayers(ctx context.Context, world string, inc int64, r *playerRows) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	tag, err := d.pool.Exec(ctx, d.upsertPlayers, world, inc, r.player, r.version, r.data)
	if err != nil {
		return 0, dbErr(err)
	}
	return tag.RowsAffected(), nil
}
