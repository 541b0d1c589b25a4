// Package store runs one Raft group on one node: hashicorp/raft with a bbolt
// log (raft-boltdb/v2) and file snapshots, the group-commit batcher with a
// critical and a bulk lane, linearizable and stale reads, membership, and the
// event archive with Subscribe.
//
// The flow: Act puts an action in a lane; the batcher packs many actions into
// one fsm.Batch, stamps the leader time, and proposes it as one log entry;
// every replica's fsmAdapter applies the entry through fsm.FSM and publishes
// the resulting events to the feed (an in-memory tail per world, written
// behind to the bbolt event archive); the batcher's waiter hands each caller
// its own result. Nothing is acknowledged before a quorum committed it.
package store
