package wire

import "errors"

// ErrMalformed reports undecodable or structurally invalid input: a value,
// an op, a packet or a message. fsm.ErrMalformed is this error, so the
// server maps both to one answer. Its text is kept from when it lived in
// fsm: error answers carry it.
var ErrMalformed = errors.New("gsd/fsm: malformed request")

// ErrorBody is the JSON shape of every error answer, of a failed item in a
// batch answer and of the last line of an event stream.
type ErrorBody struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// Codes of error answers and of rejected events' reasons: the state
// machine's.
const (
	CodeMalformed       = "malformed"
	CodeUnknownWorld    = "unknown_world"
	CodeWorldExists     = "world_exists"
	CodeNotFound        = "not_found"
	CodeTypeMismatch    = "type_mismatch"
	CodePolicyViolation = "policy_violation"
	CodeUndeclaredField = "undeclared_field"
	CodeSeqReused       = "seq_reused"
	CodeSeqExpired      = "seq_expired"
	CodeSeqUnknown      = "seq_unknown"
	CodeValidator       = "validator"
	CodeSessionUnknown  = "session_unknown"
	CodeSessionExists   = "session_exists"
	CodeSessionDenied   = "session_denied"
	CodeSessionKicked   = "kicked"
	CodeBanned          = "banned"
	// CodeWorldFull: a session open beyond the world's rules key capacity.
	CodeWorldFull = "world_full"
	// CodeWorldActive: a delete on the condition that the world is idle
	// found it active (idle expiry, issue 14).
	CodeWorldActive = "world_active"
	// CodeWorldMoved: a write to a world that moved to another shard; the
	// message names the shard (issue 14).
	CodeWorldMoved = "world_moved"
	// CodeUnsalted: an action in a world with salted audit leaves by a
	// player whose salt was erased meanwhile; a retry draws a new one
	// (issue 15).
	CodeUnsalted = "unsalted"
)

// Codes the server's edge answers with besides the state machine's.
const (
	CodeTooLarge         = "too_large"
	CodeNotLeader        = "not_leader"
	CodeOutcomeUnknown   = "outcome_unknown"
	CodeOverloaded       = "overloaded"
	CodeArchiveGap       = "archive_gap"
	CodeUnavailable      = "unavailable" // the node is shutting down
	CodeTimeout          = "timeout"     // a read ran out of time
	CodeNotReady         = "not_ready"   // the node knows no leader yet
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInternal         = "internal"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeSlowConsumer     = "slow_consumer"
	CodeSessionReplaced  = "session_replaced"
	CodeIdle             = "idle_timeout"
	CodeDraining         = "draining"
	CodeMoved            = "moved"
	CodeTicketInvalid    = "ticket_invalid"
	CodeNoTarget         = "no_target"
	// CodeRateLimited: the player sent actions faster than the edge's
	// per-player rate limit lets through; nothing was proposed.
	CodeRateLimited = "rate_limited"
	// CodeConflict: a shard map change the meta group refuses as things
	// are (a shard that exists or still holds worlds, a node that is
	// still a voter; issue 14).
	CodeConflict = "conflict"
	// CodeNotSupported: what the node does not do (yet) for this world or
	// route, e.g. moving a world that salts its audit leaves.
	CodeNotSupported = "not_supported"
)

// Codes of the audit routes (docs/API.md, "Audit").
const (
	// CodeBeyondLog: a proof or leaves asked for beyond the node's audit log.
	CodeBeyondLog = "beyond_log"
	// CodeNoAuditKey: a signed checkpoint asked of a node without the audit key.
	CodeNoAuditKey = "no_audit_key"
)
