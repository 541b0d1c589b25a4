// Package fanout hands one world's committed events to many readers on a
// node at the cost of one.
//
// Its place in the flow: the store commits events and keeps each world's
// feed (store.Subscribe); the edge (api) serves readers of that feed. Without
// fan-out every reader would read the feed and encode each event itself. A
// Hub instead runs one fan per Key (world and linger), started by its first
// member and stopped by its last: the fan reads the feed once per window
// (one read, then the reads already waiting, up to Config.Reads, then
// Linger), encodes the window once with the hub's Encoder into a Chunk,
// and hands the same read-only chunk to every member. A member writes the
// chunk's bytes from its own position on (Chunk.From).
//
// A hand-over never blocks the fan: a member whose queue of chunks
// (Config.Queue) is full is detached, its channel closed after the chunks
// already queued. Catch-up is the member's job, from its own subscription:
// Attach returns the seq of the next event the fan hands out, and a member
// behind it (a detached one, or one starting from an older seq) reads the
// events before it on its own, then attaches again. A feed that fails ends
// the fan; its members then meet the failure on their own subscriptions.
//
// The encoding is injected, so one Hub serves one kind of stream: the
// NDJSON event streams use one with an encoder of NDJSON lines. The play
// hub (api/hub.go, WebSocket frames per codec, interest filtering and
// per-tick deltas) is to move onto it next; spectator/ and anticheat/ use
// it without importing api.
//
// Goroutines: a fan's goroutine is owned by its Hub; it stops when its last
// member detaches, when its feed fails, or when Hub.Close is called, which
// also waits for it.
package fanout
