package client

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// Error codes the server answers with that the client acts on.
const (
	CodeNotLeader      = wire.CodeNotLeader
	CodeOutcomeUnknown = wire.CodeOutcomeUnknown
	CodeOverloaded     = wire.CodeOverloaded
	CodeUnavailable    = wire.CodeUnavailable // the node is shutting down
	CodeNotReady       = wire.CodeNotReady    // the node knows no leader yet
	CodeTimeout        = wire.CodeTimeout     // a read ran out of time
	CodeArchiveGap     = wire.CodeArchiveGap
	CodeSeqReused      = wire.CodeSeqReused
	CodeSeqExpired     = wire.CodeSeqExpired
	CodeWorldExists    = wire.CodeWorldExists
	CodeUnknownWorld   = wire.CodeUnknownWorld
	CodeNotFound       = wire.CodeNotFound
	// CodeWorldMoved: the node asked holds the world fenced, moved to
	// another shard; retried (another node, or this one once its shard
	// map follows). A refused write was not applied.
	CodeWorldMoved = wire.CodeWorldMoved
	CodeSeqUnknown = wire.CodeSeqUnknown
	// CodeUnsalted: an action in a salted world by a player whose salt was
	// erased while it was sent; refused before it took a seq, so retried:
	// the retry draws a new salt.
	CodeUnsalted = wire.CodeUnsalted
)

// ErrOutcomeUnknown marks an error returned after a request that may have
// been applied (an outcome_unknown answer, or a connection lost after the
// request was sent) when no later attempt settled it. For actions, retry with
// the same seq to learn the outcome.
var ErrOutcomeUnknown = errors.New("gsd/client: outcome unknown, retry with the same seq")

// ErrGap reports an event stream that skipped a seq.
var ErrGap = errors.New("gsd/client: gap in the event stream")

// Error is an error answer of the server: its HTTP status and the code and
// message of the JSON body {"code":..,"error":..}. Errors read from an event
// stream carry Status 0 unless the code is known.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns "gsd: <status> <code>: <message>".
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	if e.Status == 0 {
		return fmt.Sprintf("gsd: %s: %s", code, e.Message)
	}
	return fmt.Sprintf("gsd: %d %s: %s", e.Status, code, e.Message)
}

// retryable reports whether repeating the same request may succeed: every
// 503 (no leader, shutting down, unknown outcome, read timeout), 429,
// gateway errors, and an action refused unsalted.
func (e *Error) retryable() bool {
	switch e.Code {
	case CodeNotLeader, CodeOutcomeUnknown, CodeOverloaded, CodeUnavailable, CodeNotReady, CodeTimeout, CodeWorldMoved, CodeUnsalted:
		return true
	}
	switch e.Status {
	case http.StatusServiceUnavailable:
		return true
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return e.Code == ""
	}
	return false
}

// maybeApplied reports whether the request may have taken effect.
func (e *Error) maybeApplied() bool {
	if e.Code == CodeOutcomeUnknown {
		return true
	}
	// A gateway without a gsd code does not say whether it forwarded.
	return e.Code == "" && (e.Status == http.StatusBadGateway || e.Status == http.StatusGatewayTimeout)
}

// failover reports whether another node may answer better right away,
// rather than this one after a pause.
func (e *Error) failover() bool {
	switch e.Code {
	case CodeOutcomeUnknown, CodeOverloaded, CodeTimeout:
		return false
	case CodeWorldMoved:
		return true // another node's shard map may know the new home
	}
	return e.Status >= 500
}

// connError is a transport failure talking to one address. Sent is false only
// when the connection was never established, so nothing reached the server.
type connError struct {
	addr string
	sent bool
	err  error
}

func (e *connError) Error() string { return fmt.Sprintf("gsd: %s: %v", e.addr, e.err) }
func (e *connError) Unwrap() error { return e.err }

// IsRetryable reports whether err is worth retrying unchanged (for an action:
// with the same seq): a connection error, any 503 (not_leader,
// outcome_unknown, unavailable, not_ready, timeout), 429 overloaded, 409
// unsalted, 421 world_moved, or a gateway error.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.retryable()
	}
	var ce *connError
	return errors.As(err, &ce)
}

// IsOutcomeUnknown reports whether err leaves open whether the request took
// effect: retry the action with the same seq to find out.
func IsOutcomeUnknown(err error) bool {
	if errors.Is(err, ErrOutcomeUnknown) {
		return true
	}
	var e *Error
	if errors.As(err, &e) && e.maybeApplied() {
		return true
	}
	var ce *connError
	return errors.As(err, &ce) && ce.sent
}

// IsConnError reports whether err is a transport failure (no answer at all).
func IsConnError(err error) bool {
	var ce *connError
	return errors.As(err, &ce)
}

// Code returns the server's error code in err, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// StatusCode returns the HTTP status of the server's answer in err, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// codeStatus gives errors that arrive without an HTTP status of their own
// (batch items, the last line of an event stream) the status the server
// answers them with elsewhere.
var codeStatus = map[string]int{
	CodeNotLeader:      http.StatusServiceUnavailable,
	CodeOutcomeUnknown: http.StatusServiceUnavailable,
	CodeUnavailable:    http.StatusServiceUnavailable,
	CodeNotReady:       http.StatusServiceUnavailable,
	CodeTimeout:        http.StatusServiceUnavailable,
	CodeOverloaded:     http.StatusTooManyRequests,
	CodeArchiveGap:     http.StatusGone,
	CodeUnknownWorld:   http.StatusNotFound,
	CodeNotFound:       http.StatusNotFound,
	CodeSeqUnknown:     http.StatusNotFound,
	CodeSeqReused:      http.StatusConflict,
	CodeSeqExpired:     http.StatusConflict,
	CodeWorldExists:    http.StatusConflict,
	"malformed":        http.StatusBadRequest,
	"type_mismatch":    http.StatusBadRequest,
	"policy_violation": http.StatusBadRequest,
	"undeclared_field": http.StatusBadRequest,
	"validator":        http.StatusBadRequest,
	"too_large":        http.StatusRequestEntityTooLarge,
	"internal":         http.StatusInternalServerError,
}
