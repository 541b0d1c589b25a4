package fsm

import (
	"errors"

	"github.com/gsd-dev/gsd/wire"
)

// Sentinel errors of the state machine. The api package maps each to an HTTP
// status and a code in one place; Code returns the code.
var (
	// ErrMalformed reports an undecodable or structurally invalid request
	// (wire.ErrMalformed: values and ops decode in wire).
	ErrMalformed = wire.ErrMalformed
	// ErrUnknownWorld reports an action or read on a world that does not exist.
	ErrUnknownWorld = errors.New("gsd/fsm: unknown world")
	// ErrWorldExists reports a create of a world id that is taken.
	ErrWorldExists = errors.New("gsd/fsm: world exists")
	// ErrNotFound reports a read of an entity that does not exist.
	ErrNotFound = errors.New("gsd/fsm: not found")
	// ErrTypeMismatch reports a value whose type differs from the field's declared or inferred type.
	ErrTypeMismatch = errors.New("gsd/fsm: type mismatch")
	// ErrPolicyViolation reports an op that the field's policy does not accept.
	ErrPolicyViolation = errors.New("gsd/fsm: op not allowed by field policy")
	// ErrUndeclaredField reports a write to an undeclared field of a strict world.
	ErrUndeclaredField = errors.New("gsd/fsm: undeclared field in strict world")
	// ErrSeqReused reports a client seq already used with a different payload.
	ErrSeqReused = errors.New("gsd/fsm: seq reused with a different payload")
	// ErrSeqExpired reports a client seq older than the retained idempotency window.
	ErrSeqExpired = errors.New("gsd/fsm: seq older than the idempotency window")
	// ErrSeqUnknown reports a hash or event request for a seq the node does not keep.
	ErrSeqUnknown = errors.New("gsd/fsm: seq not retained")
	// ErrValidator reports an action refused by an injected Validator.
	ErrValidator = errors.New("gsd/fsm: rejected by validator")
)

// Reason codes carried by rejected events and by 4xx answers.
const (
	CodeMalformed       = wire.CodeMalformed
	CodeUnknownWorld    = wire.CodeUnknownWorld
	CodeWorldExists     = wire.CodeWorldExists
	CodeNotFound        = wire.CodeNotFound
	CodeTypeMismatch    = wire.CodeTypeMismatch
	CodePolicyViolation = wire.CodePolicyViolation
	CodeUndeclaredField = wire.CodeUndeclaredField
	CodeSeqReused       = wire.CodeSeqReused
	CodeSeqExpired      = wire.CodeSeqExpired
	CodeSeqUnknown      = wire.CodeSeqUnknown
	CodeValidator       = wire.CodeValidator
)

var codes = []struct {
	err  error
	code string
}{
	{ErrMalformed, CodeMalformed},
	{ErrUnknownWorld, CodeUnknownWorld},
	{ErrWorldExists, CodeWorldExists},
	{ErrNotFound, CodeNotFound},
	{ErrTypeMismatch, CodeTypeMismatch},
	{ErrPolicyViolation, CodePolicyViolation},
	{ErrUndeclaredField, CodeUndeclaredField},
	{ErrSeqReused, CodeSeqReused},
	{ErrSeqExpired, CodeSeqExpired},
	{ErrSeqUnknown, CodeSeqUnknown},
	{ErrValidator, CodeValidator},
	{ErrSessionUnknown, CodeSessionUnknown},
	{ErrSessionExists, CodeSessionExists},
	{ErrSessionDenied, CodeSessionDenied},
	{ErrSessionKicked, CodeSessionKicked},
	{ErrBanned, CodeBanned},
	{ErrDataConflict, CodeDataConflict},
	{ErrNotSupported, CodeNotSupported},
	{ErrRulesConflict, CodeRulesConflict},
	{ErrRulesIncompatible, CodeRulesIncompatible},
	{ErrUnknownAction, CodeUnknownAction},
	{ErrForbidden, CodeForbidden},
	{ErrActionFailed, CodeActionFailed},
	{ErrWorldFull, CodeWorldFull},
	{ErrWorldActive, CodeWorldActive},
	{ErrWorldMoved, CodeWorldMoved},
	{ErrUnsalted, CodeUnsalted},
}

// Code returns the reason code of err, or "" when err is not an fsm error.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}
