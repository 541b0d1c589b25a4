package edge

import (
	"context"
	"errors"
	"net/http"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// Codes the edge answers with besides fsm's reason codes (fsm.Code*); all
// are wire's.
const (
	CodeTooLarge         = wire.CodeTooLarge
	CodeNotLeader        = wire.CodeNotLeader
	CodeOutcomeUnknown   = wire.CodeOutcomeUnknown
	CodeOverloaded       = wire.CodeOverloaded
	CodeArchiveGap       = wire.CodeArchiveGap
	CodeUnavailable      = wire.CodeUnavailable
	CodeTimeout          = wire.CodeTimeout
	CodeNotReady         = wire.CodeNotReady
	CodeMethodNotAllowed = wire.CodeMethodNotAllowed
	CodeInternal         = wire.CodeInternal
	CodeUnauthorized     = wire.CodeUnauthorized
	CodeForbidden        = wire.CodeForbidden
	CodeSlowConsumer     = wire.CodeSlowConsumer
	CodeSessionReplaced  = wire.CodeSessionReplaced
	CodeIdle             = wire.CodeIdle
	CodeConflict         = wire.CodeConflict
	// CodeNotFound is fsm's code, also used for routes that do not exist.
	CodeNotFound = fsm.CodeNotFound
)

// Errors the edge raises itself.
var (
	ErrTooLarge    = errors.New("gsd/api: request too large")
	ErrInternal    = errors.New("gsd/api: internal error")
	ErrUnavailable = errors.New("gsd/api: server closing")
	ErrNotReady    = errors.New("gsd/api: not ready: no known leader")
	// ErrUnauthorized: a missing, forged, expired or misaddressed token.
	ErrUnauthorized = errors.New("gsd/api: unauthorized")
	// ErrForbidden: a valid token asking to act as someone else.
	ErrForbidden = errors.New("gsd/api: forbidden")
	// ErrSlowConsumer: a play connection that reads slower than its events come.
	ErrSlowConsumer = errors.New("gsd/api: slow consumer")
	// ErrSessionReplaced: the player opened a newer session in the world.
	ErrSessionReplaced = errors.New("gsd/api: session replaced by a newer one")
	// ErrIdle: a play connection that sent nothing for too long.
	ErrIdle = errors.New("gsd/api: idle connection")
	// ErrConflict: a shard map change refused as things are (issue 14).
	ErrConflict = errors.New("gsd/api: conflict")
)

// ErrorBody is the JSON shape of every error answer, and of a failed item in
// a batch answer or the last line of an event stream.
type ErrorBody = wire.ErrorBody

// Classify maps an error to its HTTP status and code. It is the one place
// where errors become answers (HTTP, batch items, stream lines). write says
// whether the request may have changed state: a write cut off by its
// deadline may still commit, so it is outcome_unknown, while a read is
// merely timed out.
func Classify(err error, write bool) (int, string) {
	if re, ok := errors.AsType[*RemoteError](err); ok {
		return re.Status, re.Code // the leader's answer to a forwarded call
	}
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, CodeUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, CodeForbidden
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests, CodeRateLimited
	case errors.Is(err, ErrSlowConsumer):
		return http.StatusTooManyRequests, CodeSlowConsumer
	case errors.Is(err, ErrSessionReplaced):
		return http.StatusConflict, CodeSessionReplaced
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, CodeConflict
	case errors.Is(err, ErrIdle):
		return http.StatusRequestTimeout, CodeIdle
	case errors.Is(err, ErrDraining):
		return http.StatusServiceUnavailable, CodeDraining
	case errors.Is(err, ErrMoved):
		return http.StatusTemporaryRedirect, CodeMoved
	case errors.Is(err, ErrTicket):
		return http.StatusUnauthorized, CodeTicketInvalid
	case errors.Is(err, ErrNoTarget):
		return http.StatusConflict, CodeNoTarget
	case errors.Is(err, ErrNotReady), errors.Is(err, auditor.ErrNotReady):
		return http.StatusServiceUnavailable, CodeNotReady
	case errors.Is(err, ErrUnavailable), errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable, CodeUnavailable
	case errors.Is(err, store.ErrNotLeader):
		return http.StatusServiceUnavailable, CodeNotLeader
	case errors.Is(err, store.ErrOutcomeUnknown):
		return http.StatusServiceUnavailable, CodeOutcomeUnknown
	case errors.Is(err, store.ErrOverloaded):
		return http.StatusTooManyRequests, CodeOverloaded
	case errors.Is(err, store.ErrArchiveGap):
		return http.StatusGone, CodeArchiveGap
	case errors.Is(err, store.ErrVersionGate):
		return http.StatusConflict, CodeVersionGate
	case errors.Is(err, ErrWireVersion):
		return http.StatusBadRequest, CodeWireVersion
	case errors.Is(err, audit.ErrRange):
		return http.StatusNotFound, CodeBeyondLog
	case errors.Is(err, auditor.ErrNoKey):
		return http.StatusNotFound, CodeNoAuditKey
	case errors.Is(err, moderation.ErrIllegal):
		return http.StatusConflict, moderation.CodeIllegal
	case errors.Is(err, moderation.ErrRace):
		return http.StatusConflict, moderation.CodeRace
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		if write {
			return http.StatusServiceUnavailable, CodeOutcomeUnknown
		}
		return http.StatusServiceUnavailable, CodeTimeout
	}
	switch code := fsm.Code(err); code {
	case fsm.CodeMalformed, fsm.CodeTypeMismatch, fsm.CodePolicyViolation, fsm.CodeUndeclaredField, fsm.CodeValidator:
		return http.StatusBadRequest, code
	case fsm.CodeUnknownWorld, fsm.CodeNotFound, fsm.CodeSeqUnknown, fsm.CodeSessionUnknown, fsm.CodeUnknownAction:
		return http.StatusNotFound, code
	case fsm.CodeWorldExists, fsm.CodeSeqReused, fsm.CodeSeqExpired, fsm.CodeSessionExists,
		fsm.CodeRulesConflict, fsm.CodeRulesIncompatible, fsm.CodeWorldFull, fsm.CodeWorldActive, fsm.CodeDataConflict,
		fsm.CodeUnsalted:
		return http.StatusConflict, code
	case fsm.CodeNotSupported:
		return http.StatusUnprocessableEntity, code
	case fsm.CodeWorldMoved:
		// The world lives on another shard now (the message names it): the
		// request reached a node whose shard map is stale.
		return http.StatusMisdirectedRequest, code
	case fsm.CodeSessionDenied, fsm.CodeSessionKicked, fsm.CodeBanned, fsm.CodeForbidden:
		return http.StatusForbidden, code
	}
	return http.StatusInternalServerError, CodeInternal
}

// errorBody returns err's code and message, logging what the client cannot act on.
func (s *Core) ErrorFor(err error, write bool) (int, ErrorBody) {
	status, code := Classify(err, write)
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", "err", err)
	}
	return status, ErrorBody{Code: code, Error: err.Error()}
}

// writeError answers with err's status and code.
func (s *Core) WriteError(w http.ResponseWriter, err error, write bool) {
	status, body := s.ErrorFor(err, write)
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfter(err))
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="gsd"`)
	}
	s.WriteJSON(w, status, body)
}

// Errors of the drain and transfer.
var (
	// ErrDraining: a new play connection to a draining node.
	ErrDraining = errors.New("gsd/api: node draining")
	// ErrMoved: a play connection moved to another node by a drain.
	ErrMoved = errors.New("gsd/api: moved to another node")
	// ErrTicket: a resume with a forged, expired or misdirected ticket.
	ErrTicket = errors.New("gsd/api: transfer ticket refused")
	// ErrNoTarget: a drain with no other node to move connections to.
	ErrNoTarget = errors.New("gsd/api: no node to move connections to")
)

// Codes of the drain and transfer.
const (
	CodeDraining      = wire.CodeDraining
	CodeMoved         = wire.CodeMoved
	CodeTicketInvalid = wire.CodeTicketInvalid
	CodeNoTarget      = wire.CodeNoTarget
)

// Codes of the audit routes.
const (
	CodeBeyondLog  = wire.CodeBeyondLog
	CodeNoAuditKey = wire.CodeNoAuditKey
)
