// Package client is gsd's Go client for the HTTP API.
//
// It sits at the top of the flow, beside the players' own code: a Client is
// given the HTTP addresses of several nodes of one shard and talks to
// whichever answers. It moves on to the next address on connection errors and
// on 503 not_leader, and never follows redirects, because a follower forwards
// to the leader itself.
//
// Actions are idempotent by (world, player, client seq), so Act retries an
// action with the same seq after not_leader, outcome_unknown, overload and
// connection errors, with capped exponential backoff, until its context ends
// or the configured attempts are used up. A repeat answers the original
// event with Duplicate set; it is never applied twice.
//
// Events reads a world's committed events as NDJSON; Follow reconnects after
// a dropped stream and resumes from the last seq + 1, without gaps or
// duplicates.
package client
