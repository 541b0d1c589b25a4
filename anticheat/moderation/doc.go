// Package moderation keeps the detectors' flags as replicated,
// moderator-only records and reviews them (issue 15).
//
// Its place in the flow: a detector (package detect) raises a Flag on one
// node; a Recorder (a detect.Sink) turns it into an action on the
// moderation world, World, which gsd creates with rules (Rules) that make
// every field hidden from players and the public and visible to the
// viewer class Class only. The action goes through the ordinary action
// path (the edge routes it to the world's leader, the log replicates it),
// so a flag survives restarts and leader changes without any change to
// the state machine. Review transitions (confirm, dismiss, appeal) are
// actions on the same world, checked against Next's state machine and
// made safe against concurrent reviews by OCC on the record's state field.
// What a webhook receiver or an auditor sees of flags is that world's
// committed feed.
//
// A flag's record is one entity, named by ID: a hash of the detector, the
// flagged players, the world the evidence is in and its incarnation. It is
// created with expect "*" on its first field, so the first writer of a
// suspicion records it and every later one (another node running the
// detectors, the same node after a restart that raises its flags again)
// commits a conflict that changes nothing. The idempotency key of each
// write (the writer's player id and a seq that only rises) makes a retry
// after an unknown outcome safe.
//
// Nothing is banned: a record is a lead for a moderator.
package moderation
