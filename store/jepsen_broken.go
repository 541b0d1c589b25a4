//go:build jepsen_broken

package store

// BrokenLinearizableReads is true only in binaries built with
// -tags jepsen_broken: a deliberately broken gsd for the fault-injection
// suite (jepsen-style/), whose linearizable reads skip the leader check,
// VerifyLeader and the wait for the FSM, so any node answers them from its
// local, possibly stale, state. The suite must catch it. Never ship it.
const BrokenLinearizableReads = true
