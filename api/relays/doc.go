// Package relays serves the relay registry (issue 13; docs/PROTOCOL.md,
// "Relays"): GET|POST /v1/relays and DELETE /v1/relays/{id} for admins
// (gsdctl relay add|list|remove, and a relay run with --register, which
// puts itself again at each heartbeat), and GET /v1/worlds/{world}/relays
// for viewers: the relays to watch the world through, least loaded first.
//
// The records live in the registry world (package spectator/registry).
// Reads are served from this node's applied state (stale, like a stale
// entity read); puts and removals are writes on the registry world's
// leader, or are sent there as internal calls (/internal/v1/relays) that
// are never sent on again.
package relays
