// Package api is gsd's edge: the HTTP and WebSocket surfaces through which
// clients create worlds, submit actions, read entities, play, follow a
// world's event feed and administer the cluster. It assembles one node's
// edge from one package per surface over a shared core:
//
//   - api/edge: the shared core (config, backend, Router, errors and
//     their codes in one place, Classify; request decoding; identity; the
//     cluster credential; request metrics; the internal client to other
//     nodes; the cache of encoded events) and the HTTP wrapper every
//     request passes (access checks, wire version, JSON 404s, metrics);
//   - api/public: worlds, actions and batches, entity reads, rules, hashes;
//   - api/admin: membership, leadership, snapshots, health, presence,
//     kicks, bans, player data export and import;
//   - api/peer: the node-to-node service other nodes call;
//   - api/play: play sessions over WebSocket and the UDP input lane, their
//     hubs, batched acks and the node's drain;
//   - api/streams: NDJSON event streams on the shared fanout package;
//   - api/watch: spectators' watch route (package spectator's frames);
//   - api/audit: each world's audit log (checkpoints, inclusion and
//     consistency proofs, leaf hashes) from the node's auditor, when
//     Config.Audit is set;
//   - api/moderation: the review of anti-cheat flags (list, read, confirm,
//     dismiss, appeal, record) over the moderation world, for moderators;
//   - api/relays: the relay registry (list, put, remove, for admins) over
//     the registry world, and a world's relays for its viewers.
//
// Its place in the flow of one action: a handler decodes and validates the
// request (malformed input is answered 4xx before anything is proposed),
// asks the Router where the world's commands go, runs the action on the
// Group it names when this node leads it, and answers with the committed
// event. A node that does not lead never proposes: it sends writes and
// linearizable reads to the leader itself, as calls of the internal
// node-to-node service, which are never sent on again, so a stale view of
// the leader cannot make a request loop. docs/API.md lists the errors
// with the retry rules.
//
// api holds no game logic and never touches Raft or bolt; everything it
// needs from the replicated state goes through the Router, its Groups and
// the Backend (this node's view).
package api
