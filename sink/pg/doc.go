// Package pg mirrors committed events of worlds, and their players'
// critical data, into a studio's PostgreSQL database, idempotently and
// restart-safe.
//
// Place in the flow: it reads the store's committed feed (a Source, in
// production the node's store.Store through feed.NewStoreSource), like the
// edge's event streams do, and writes rows; it never touches Apply, the
// edge or the FSM's state.
//
// Which node writes a world: the sink runs on every node, and each node
// mirrors only the worlds whose group it leads (Source.Leads). When
// leadership moves, the old leader's sink stops that world within
// Config.CheckInterval and the new leader's sink resumes from the position
// stored in the database. Both may write for that short while; that is
// harmless, because every write is idempotent:
//
//   - an event's row is keyed by (world, incarnation, seq) and inserted
//     with ON CONFLICT DO NOTHING, and every replica holds the same event
//     at the same seq;
//   - the world's position (the seq up to which every event is in the
//     table) is written in the same transaction as the rows and only
//     ever rises (GREATEST), so a crash, a lost connection or a
//     transaction whose commit was lost just repeats rows from the stored
//     position on.
//
// Incarnation: the sink keys rows by the world's incarnation (the Raft
// index of its creation; feed.Position), so a world deleted and created
// again is mirrored from seq 1 beside the old one's rows. Before going on
// from a stored position it checks that the database's event at that seq
// (or at the node's last seq, if lower) is the node's (Verify): a cluster
// rebuilt against the same database creates its worlds at the same
// indexes, and such a world is refused (ErrIncarnation) rather than
// mixed with the old one's rows. The loop per world (leadership, position, incarnation, read,
// batch, backoff) is sink/feed's Follower; this package is its Target. See
// schema.go for the tables and docs/INTEGRATIONS.md for the guarantees.
//
// Player data is not in the feed (it does not advance the seq): players.go
// polls the node's applied state for each player's data and its version
// and upserts a row only over an older version.
package pg
