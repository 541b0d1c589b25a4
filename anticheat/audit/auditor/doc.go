// Package auditor keeps a node's audit logs: for every world the node
// holds, the Merkle tree of its committed events (anticheat/audit), fed
// from the world's committed feed, and, when the node holds the cluster's
// audit key, checkpoints of it signed at an interval and on demand.
//
// Its place in the flow: the store commits events and keeps each world's
// feed; an Auditor follows each world's feed from the position after its
// tree's stored size (so a restarted node resumes where it stopped, and
// the feed's at-least-once delivery is absorbed by audit.Log), appends
// the events in batches of what the feed has ready, and signs. The edge
// (api/audit) serves the logs' checkpoints and proofs. Every replica
// builds the same tree from the same log, so any node can serve proofs;
// only nodes given the key sign.
//
// A world deleted and created again (fsm.WorldInfo.Incarnation) gets a
// new tree; the old incarnation's ends with a tombstone, its final
// checkpoint marked as one, written once its follower stopped and signed
// when asked (tomb.go). Deleted incarnations stay readable (LogOf,
// CheckpointOf) while the node keeps their trees.
//
// Under a shard map the source spreads the worlds over the node's groups
// (Placement): a world that moves keeps its incarnation, so its tree goes
// on; its follower is started again on its new home. The node's map and
// groups catch up independently, so a world missing from the list may
// live on: under a shard map a tree is buried only on evidence that a
// group of the node applied its incarnation's delete
// (Placement.Deleted); otherwise it is kept without a tombstone, not
// followed, and asked about again at every scan. A source that can say
// when its world list is the node's (Settler: a restarted group lists
// the worlds created since its last snapshot only once it replayed its
// log) holds the auditor back from burying or following until then, and
// lookups of worlds it does not follow yet answer ErrNotReady.
//
// Goroutines: one per followed world and one signer, owned by Run, which
// returns once they have stopped.
package auditor
