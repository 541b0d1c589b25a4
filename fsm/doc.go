// Package fsm is gsd's deterministic game-state machine: worlds, their rules,
// entities and fields, player actions with optimistic concurrency, CRDT field
// policies, idempotency by (world, player, client seq), incremental state
// hashes and copy-on-write snapshots.
//
// It sits below the store: the store's batcher encodes a Batch of Commands
// into one Raft log entry, and every replica calls FSM.Apply with the same
// bytes in the same order. The FSM therefore follows strict determinism rules:
// no wall clock (time comes from the leader stamp inside the batch), no
// randomness, no goroutines, and no map iteration order in any result, hash or
// encoding. Side effects (answering clients, feeds, metrics) hang off the
// Events that Apply returns; Apply itself only mutates state.
//
// Concurrency: Apply, Snapshot and Restore must be called from one goroutine
// (the Raft FSM goroutine). Reads (Entity, Worlds, Hash, ...) may run
// concurrently with Apply; they take a read lock. A Snapshot is an immutable
// view: entities, players and worlds are copied on their first write after the
// snapshot, so Persist can encode it while Apply continues.
package fsm
