package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gsd-dev/gsd/store"
)

// InternalPrefix is the path prefix of the node-to-node routes.
const InternalPrefix = "/internal/v1"

// IsInternalPattern reports whether a mux pattern is a node-to-node route.
func IsInternalPattern(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(path, InternalPrefix+"/")
}

func InternalActPath(world string) string {
	return InternalPrefix + "/worlds/" + url.PathEscape(world) + "/actions"
}

func InternalBatchPath(world string) string { return InternalActPath(world) + ":batch" }

func InternalEntityPath(world, id string) string {
	return InternalPrefix + "/worlds/" + url.PathEscape(world) + "/entities/" + url.PathEscape(id)
}

func InternalSessionPath(world, op string) string {
	return InternalPrefix + "/worlds/" + url.PathEscape(world) + "/sessions/" + op
}

const InternalAcksPath = InternalPrefix + "/sessions:acks"

// InternalWorldPath is the path of a world's admin call: rest follows
// /internal/v1/worlds/{world}.
func InternalWorldPath(world, rest string) string {
	return InternalPrefix + "/worlds/" + url.PathEscape(world) + rest
}

// peerRequest builds a request to another node of the cluster. Every
// node-to-node request gets its headers here: the HeaderForwarded mark and
// the cluster secret (and the cluster version, once there is one).
func (s *Core) PeerRequest(ctx context.Context, method, target string, body []byte) (*http.Request, error) {
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(HeaderForwarded, "1")
	s.SetClusterKey(req.Header)
	return req, nil
}

// callNode makes one internal call to the node rt names and decodes its
// 2xx answer into out. token is the player's JWT, passed on with auth on.
func (s *Core) CallNode(ctx context.Context, rt Route, method, path string, body []byte, token string, out any) error {
	return s.send(ctx, rt, method, path, body, token, func(_ int, r io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(r, s.cfg.MaxBatchBodyBytes))
		if err != nil {
			return ForwardError(rt.Node, err, method != http.MethodGet)
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: leader %s: undecodable answer: %v", ErrInternal, rt.Node, err)
		}
		return nil
	})
}

// send makes one internal call to the node rt names and hands its 2xx
// answer's status and body to answer. Any other answer becomes a
// *RemoteError; a failed round trip the error ForwardError gives (for a
// write, outcome_unknown once the request may have left).
func (s *Core) send(ctx context.Context, rt Route, method, path string, body []byte, token string, answer func(status int, body io.Reader) error) error {
	return s.sendTyped(ctx, rt, method, path, body, "", token, answer, nil)
}

// sendTyped is send with a body of contentType (JSON when empty) and a
// look at a non-2xx answer's status and headers first: an error refused
// returns is the call's.
func (s *Core) sendTyped(ctx context.Context, rt Route, method, path string, body []byte, contentType, token string,
	answer func(status int, body io.Reader) error, refused func(status int, h http.Header) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	req, err := s.PeerRequest(ctx, method, s.peerURL(rt.Addr)+path, body)
	if err != nil {
		return fmt.Errorf("%w: leader %s has a bad address %q: %v", store.ErrNotLeader, rt.Node, rt.Addr, err)
	}
	if contentType != "" && len(body) > 0 {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rt.GroupID != "" {
		req.Header.Set(HeaderGroup, rt.GroupID)
	}
	write := method != http.MethodGet
	span := traceCall(req, rt, path)
	defer span.End()
	resp, err := s.fwd.Do(req)
	if err != nil {
		span.Fail(err)
		s.metrics.Forwards.WithLabelValues("error").Inc()
		return ForwardError(rt.Node, err, write)
	}
	defer resp.Body.Close()
	s.metrics.Forwards.WithLabelValues("ok").Inc()
	if resp.StatusCode/100 == 2 {
		return answer(resp.StatusCode, resp.Body)
	}
	if refused != nil {
		if err := refused(resp.StatusCode, resp.Header); err != nil {
			return err
		}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return ForwardError(rt.Node, err, write)
	}
	var eb ErrorBody
	if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
		eb = ErrorBody{Code: CodeInternal, Error: fmt.Sprintf("undecodable answer: %.200s", b)}
	}
	return &RemoteError{Status: resp.StatusCode, Code: eb.Code, Msg: eb.Error}
}

// relay serves a client's request by one internal call to the node rt
// names (body and the client's token go along) and answers with what that
// node answered, marked with HeaderLeader: a 2xx answer's status and bytes
// streamed as they come, or its error as it was. When the call itself
// failed, the
// error is returned for the caller to answer.
func (s *Core) Relay(w http.ResponseWriter, r *http.Request, rt Route, method, path string, body []byte) error {
	err := s.send(r.Context(), rt, method, path, body, Bearer(r), func(status int, answer io.Reader) error {
		w.Header().Set(HeaderLeader, rt.Node)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if _, err := io.Copy(w, answer); err != nil {
			s.log.Debug("copy relayed answer", "leader", rt.Node, "err", err)
		}
		return nil
	})
	if re, ok := errors.AsType[*RemoteError](err); ok {
		w.Header().Set(HeaderLeader, rt.Node)
		s.WriteRemoteError(w, re)
		return nil
	}
	return err
}

// writeRemoteError answers with another node's error answer unchanged.
func (s *Core) WriteRemoteError(w http.ResponseWriter, re *RemoteError) {
	switch re.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	s.WriteJSON(w, re.Status, ErrorBody{Code: re.Code, Error: re.Msg})
}

// forwarded reports whether another node sent r: it is served here or
// refused, never sent on.
func IsForwarded(r *http.Request) bool { return r.Header.Get(HeaderForwarded) != "" }

// The paths of the world creation and membership calls.
const (
	InternalWorldsPath  = InternalPrefix + "/worlds"
	InternalClusterPath = InternalPrefix + "/cluster"
)
