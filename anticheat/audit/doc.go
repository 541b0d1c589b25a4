// Package audit is the tamper-evident log of a world's committed events:
// an RFC 6962 Merkle tree with one leaf per event, in seq order, so that
// anyone holding a signed checkpoint (the world, the number of events, the
// root hash) can check an exported match log offline and find any event
// that was modified, removed, inserted or reordered.
//
// Its place in the flow: the committed feed (store's Subscribe, through
// fanout) hands a world's events, in order, to a Log, which appends their
// leaves (wire.AppendAuditLeaf, frozen and versioned) and keeps the
// tree's hashes in a HashStore; it answers inclusion and consistency
// proofs and makes checkpoints, which the holder of the cluster's audit
// key signs as notes (golang.org/x/mod/sumdb/note, the checkpoint form of
// the transparency-log ecosystem). VerifyLog is the offline side: an
// NDJSON log as the event stream sends it, a checkpoint opened with the
// public key, and optionally the tree's leaf hashes, which name the
// events whose content changed.
//
// The hashing and proofs are golang.org/x/mod/sumdb/tlog's. The package
// stores nothing itself and links no database (gsdctl verifies with it):
// MemStore keeps the hashes in memory; a disk store implements HashStore
// elsewhere. Keys are note keys (keys.go), which also sign envelopes
// (wire.Keyring) under the id name+hash.
package audit
