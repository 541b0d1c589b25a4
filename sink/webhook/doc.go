// Package webhook exports committed events of worlds to an HTTP endpoint
// in signed batches, at least once, restart-safe.
//
// Place in the flow: like sink/pg it reads the store's committed feed (a
// Source; in production the node's store.Store through feed.NewStoreSource)
// and never touches Apply, the edge or the FSM's state.
//
// Which node posts a world: the sink runs on every node and each node
// exports only the worlds whose group it leads (Source.Leads), checked
// every Config.CheckInterval and again before each batch.
//
// Delivery is at least once: a batch is POSTed (see envelope.go and
// docs/EVENTS.md), retried with exponential backoff and jitter until the
// receiver answers 2xx, and only then is the world's position advanced
// and written to the checkpoint file in Config.Dir. A crash between the
// 2xx and the checkpoint's write, a leadership change (the new leader
// resumes from the further of its own checkpoint and the replicated
// position, Config.Positions, written every few events; without it from
// its own checkpoint, which may be older) or a batch whose
// 2xx was lost repeats events: receivers de-duplicate by (world,
// incarnation, seq).
//
// The loop per world (leadership, position, incarnation, read, batch,
// backoff) is sink/feed's Follower; this package is its Target: the signed
// POST and the checkpoint, which names the world's incarnation so that a
// world deleted and created again is exported from seq 1.
package webhook
