// Package moderation serves the review of anti-cheat flags under
// /v1/moderation/ (docs/API.md, "Moderation"): list and read the flags
// the detectors raised, confirm, dismiss or appeal them, and record a
// flag. The records live in the moderation world (package
// anticheat/moderation); this package is the edge over them.
//
// Reads (the list and one flag) are served from this node's applied
// state (stale, like a stale entity read): a review just made on the
// leader shows on another node within its replication lag. Reviews and
// records are writes: they run on the moderation world's leader, or are
// sent there as internal calls (/internal/v1/moderation/...) that are
// never sent on again. A review reads the record where it runs and sets
// its state with expect on the version read, so two moderators cannot
// both move the same flag from one state. A review's effect beyond the
// record, a ban by the flagged world's policy, is policy.go's.
//
// API is also the Writer of the node's detectors' Recorder: Raise records
// a flag on the moderation world's leader.
package moderation
