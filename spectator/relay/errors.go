package relay

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// The package's errors.
var (
	// ErrFull refuses a viewer when the relay serves Config.MaxViewers
	// already (503 overloaded with Retry-After).
	ErrFull = errors.New("gsd/relay: the relay is full")
	// ErrGap reports a position older than the events the relay still
	// holds (410 archive_gap, as a node's archive answers).
	ErrGap = errors.New("gsd/relay: events before the relay's oldest are gone")
	// ErrClosed reports a relay that is stopping.
	ErrClosed = errors.New("gsd/relay: closed")
	// ErrBadRequest reports a viewer's query the relay cannot serve.
	ErrBadRequest = errors.New("gsd/relay: bad request")
	// ErrNoView reports an aggregated view the relay does not serve (404
	// not_found, as a node answers one its caller may not see).
	ErrNoView = errors.New("gsd/relay: no such view")
)

// UpstreamError is the upstream's refusal, as its error body said it: an
// answer to the stream's request, or the last line of a stream.
type UpstreamError struct {
	Status  int // the HTTP status; 0 for a stream's last line
	Code    string
	Message string
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("gsd/relay: upstream: %s: %s", e.Code, e.Message)
}

// retryable reports whether a new stream from the same position may
// succeed: the upstream restarting, overloaded or without a leader, not a
// refusal of the view, the world or the position.
func (e *UpstreamError) retryable() bool {
	switch e.Code {
	case wire.CodeUnavailable, wire.CodeNotReady, wire.CodeOverloaded, wire.CodeTimeout,
		wire.CodeInternal, wire.CodeDraining, wire.CodeNotLeader, wire.CodeSlowConsumer:
		return true
	}
	return e.Code == "" && e.Status >= 500
}

// status maps err to the HTTP status and code a viewer is answered with,
// in this one place: the upstream's own refusal passes through.
func status(err error) (int, string) {
	var ue *UpstreamError
	switch {
	case errors.As(err, &ue):
		if ue.Status != 0 && ue.Code != "" {
			return ue.Status, ue.Code
		}
		if s, ok := codeStatus[ue.Code]; ok {
			return s, ue.Code
		}
		return http.StatusBadGateway, wire.CodeUnavailable
	case errors.Is(err, ErrBadRequest), errors.Is(err, wire.ErrMalformed):
		return http.StatusBadRequest, wire.CodeMalformed
	case errors.Is(err, ErrFull):
		return http.StatusServiceUnavailable, wire.CodeOverloaded
	case errors.Is(err, ErrNoView):
		return http.StatusNotFound, wire.CodeNotFound
	case errors.Is(err, ErrGap):
		return http.StatusGone, wire.CodeArchiveGap
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, wire.CodeUnavailable
	}
	return http.StatusBadGateway, wire.CodeUnavailable
}

// codeStatus is the status of the codes an upstream ends a stream with.
var codeStatus = map[string]int{
	wire.CodeArchiveGap:   http.StatusGone,
	wire.CodeUnknownWorld: http.StatusNotFound,
	wire.CodeUnavailable:  http.StatusServiceUnavailable,
	wire.CodeForbidden:    http.StatusForbidden,
	wire.CodeUnauthorized: http.StatusUnauthorized,
	wire.CodeMalformed:    http.StatusBadRequest,
}

// body is err's error body.
func body(err error) wire.ErrorBody {
	_, code := status(err)
	return wire.ErrorBody{Code: code, Error: err.Error()}
}
