package api

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

// The node-to-node service. A node that does not serve a world's command
// (the Router names another node) calls that node here, never through the
// public JSON routes: forwarded actions and action batches, linearizable
// reads, play connections' session commands and their batched acks, and
// the admin and world commands (a world's creation, a rules update,
// membership changes, kick, ban, unban, player data export and import). The
// routes live under InternalPrefix; only nodes of the cluster call them
// (cluster_auth.go: the cluster secret when set, HeaderForwarded always),
// and they never send a call on again, so a stale route costs one
// not_leader refusal, never a loop. Every call goes out through
// peerRequest, the one place that sets node-to-node headers.
//
// Calls, each with its request and answer type:
//
//	POST /internal/v1/worlds/{world}/actions        actionRequest → wire.Event
//	POST /internal/v1/worlds/{world}/actions:batch  batchRequest → batchResponse
//	GET  /internal/v1/worlds/{world}/entities/{id}  (none) → entityJSON (linearizable)
//	POST /internal/v1/worlds/{world}/sessions/{op}  sessionCmdJSON → sessionJSON
//	POST /internal/v1/sessions:acks                 acksJSON → acksAnswer
//
// The admin and world commands take the public route's body and answer
// its answer (status included: a world's creation is 201), so they share
// the public body types (createWorldRequest, wire.RulesUpdate,
// fsm.NodeInfo, wire.Ban, wire.PlayerDataFile) and handlers:
//
//	POST   /internal/v1/worlds                               createWorldRequest → {"id"} (201)
//	PUT    /internal/v1/worlds/{world}/rules                 wire.RulesUpdate → wire.RulesVersion
//	POST   /internal/v1/cluster/join                         fsm.NodeInfo → {"ok"}
//	DELETE /internal/v1/cluster/nodes/{id}                   (none) → {"ok"}
//	POST   /internal/v1/cluster/transfer-leadership          (none) → {"ok"}
//	POST   /internal/v1/worlds/{world}/sessions/{id}/kick    wire.Ban → wire.SessionInfo
//	POST   /internal/v1/worlds/{world}/bans                  wire.Ban → wire.SessionInfo
//	DELETE /internal/v1/worlds/{world}/bans/{player}         (none) → wire.SessionInfo
//	GET    /internal/v1/worlds/{world}/sessions:export       (none) → wire.PlayerDataFile
//	POST   /internal/v1/worlds/{world}/sessions:import       wire.PlayerDataFile → wire.ImportAnswer
//
// Who may run an admin command is decided once, by the node the admin
// called: its public route checks the cluster secret or an admin token
// (cluster_auth.go). The serving node trusts the calling node, as it does
// for forwarded actions: the internal route needs the cluster secret (with
// none, the HeaderForwarded mark), never an admin token, so a call is as
// strong as the public route's check and no weaker. None of these commands
// needs the admin's identity; the admin's Authorization still goes along,
// as with every relayed request.
//
// An error answer is an ErrorBody, which the caller turns into a
// *remoteError (classify keeps the serving node's status and code). The
// player's token, with auth on, travels in Authorization as the client
// sent it, and the serving node checks it again.

// InternalPrefix is the path prefix of the node-to-node routes.
const InternalPrefix = "/internal/v1"

// internalRoutes registers the node-to-node service. The session and acks
// calls are also served at their former public paths, for followers of
// older versions during a rolling upgrade (docs/API.md), and the public
// admin and world routes still serve requests that followers of older
// versions proxy to them (marked HeaderForwarded: run here or refused).
func (s *Server) internalRoutes() {
	s.mux.HandleFunc("POST "+InternalPrefix+"/worlds/{world}/actions", s.internalAct)
	s.mux.HandleFunc("POST "+InternalPrefix+"/worlds/{world}/actions:batch", s.internalActBatch)
	s.mux.HandleFunc("GET "+InternalPrefix+"/worlds/{world}/entities/{entity}", s.internalEntity)
	s.mux.HandleFunc("POST "+InternalPrefix+"/worlds/{world}/sessions/{op}", s.sessionCommand)
	s.mux.HandleFunc("POST "+InternalPrefix+"/sessions:acks", s.sessionAcksCommand)
	for pattern, h := range map[string]http.HandlerFunc{
		"POST /worlds":                            s.createWorld,
		"PUT /worlds/{world}/rules":               s.updateRules,
		"POST /cluster/join":                      s.join,
		"DELETE /cluster/nodes/{id}":              s.removeNode,
		"POST /cluster/transfer-leadership":       s.transferLeadership,
		"POST /worlds/{world}/sessions/{id}/kick": s.kick,
		"POST /worlds/{world}/bans":               s.ban,
		"DELETE /worlds/{world}/bans/{player}":    s.unban,
		"GET /worlds/{world}/sessions:export":     s.exportData,
		"POST /worlds/{world}/sessions:import":    s.importData,
	} {
		method, path, _ := strings.Cut(pattern, " ")
		s.mux.HandleFunc(method+" "+InternalPrefix+path, s.internalOnly(h))
	}
	s.mux.HandleFunc("POST /v1/worlds/{world}/sessions/{op}", s.sessionCommand)
	s.mux.HandleFunc("POST /v1/sessions:acks", s.sessionAcksCommand)
}

// isInternalPattern reports whether a mux pattern is a node-to-node route.
func isInternalPattern(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(path, InternalPrefix+"/")
}

func internalActPath(world string) string {
	return InternalPrefix + "/worlds/" + url.PathEscape(world) + "/actions"
}

func internalBatchPath(world string) string { return internalActPath(world) + ":batch" }

func internalEntityPath(world, id string) string {
	return InternalPrefix + "/worlds/" + url.PathEscape(world) + "/entities/" + url.PathEscape(id)
}

func internalSessionPath(world, op string) string {
	return InternalPrefix + "/worlds/" + url.PathEscape(world) + "/sessions/" + op
}

const internalAcksPath = InternalPrefix + "/sessions:acks"

// The paths of the world creation and membership calls.
const (
	internalWorldsPath  = InternalPrefix + "/worlds"
	internalClusterPath = InternalPrefix + "/cluster"
)

// internalWorldPath is the path of a world's admin call: rest follows
// /internal/v1/worlds/{world}.
func internalWorldPath(world, rest string) string {
	return InternalPrefix + "/worlds/" + url.PathEscape(world) + rest
}

// internalOnly serves h to other nodes of the cluster only.
func (s *Server) internalOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.forwardedOnly(w, r) {
			h(w, r)
		}
	}
}

// peerRequest builds a request to another node of the cluster. Every
// node-to-node request gets its headers here: the HeaderForwarded mark and
// the cluster secret (and the cluster version, once there is one).
func (s *Server) peerRequest(ctx context.Context, method, target string, body []byte) (*http.Request, error) {
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
	s.setClusterKey(req.Header)
	return req, nil
}

// callNode makes one internal call to the node rt names and decodes its
// 2xx answer into out. token is the player's JWT, passed on with auth on.
func (s *Server) callNode(ctx context.Context, rt Route, method, path string, body []byte, token string, out any) error {
	return s.send(ctx, rt, method, path, body, token, func(_ int, r io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(r, s.cfg.MaxBatchBodyBytes))
		if err != nil {
			return forwardError(rt.Node, err, method != http.MethodGet)
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: leader %s: undecodable answer: %v", errInternal, rt.Node, err)
		}
		return nil
	})
}

// send makes one internal call to the node rt names and hands its 2xx
// answer's status and body to answer. Any other answer becomes a
// *remoteError; a failed round trip the error forwardError gives (for a
// write, outcome_unknown once the request may have left).
func (s *Server) send(ctx context.Context, rt Route, method, path string, body []byte, token string, answer func(status int, body io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	req, err := s.peerRequest(ctx, method, leaderURL(rt.Addr)+path, body)
	if err != nil {
		return fmt.Errorf("%w: leader %s has a bad address %q: %v", store.ErrNotLeader, rt.Node, rt.Addr, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	write := method != http.MethodGet
	resp, err := s.fwd.Do(req)
	if err != nil {
		s.metrics.forwards.WithLabelValues("error").Inc()
		return forwardError(rt.Node, err, write)
	}
	defer resp.Body.Close()
	s.metrics.forwards.WithLabelValues("ok").Inc()
	if resp.StatusCode/100 == 2 {
		return answer(resp.StatusCode, resp.Body)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return forwardError(rt.Node, err, write)
	}
	var eb ErrorBody
	if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
		eb = ErrorBody{Code: CodeInternal, Error: fmt.Sprintf("undecodable answer: %.200s", b)}
	}
	return &remoteError{status: resp.StatusCode, code: eb.Code, msg: eb.Error}
}

// relay serves a client's request by one internal call to the node rt
// names (body and the client's token go along) and answers with what that
// node answered, marked with HeaderLeader: a 2xx answer's status and bytes
// streamed as they come, or its error as it was. When the call itself
// failed, the
// error is returned for the caller to answer.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, rt Route, method, path string, body []byte) error {
	err := s.send(r.Context(), rt, method, path, body, bearer(r), func(status int, answer io.Reader) error {
		w.Header().Set(HeaderLeader, rt.Node)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if _, err := io.Copy(w, answer); err != nil {
			s.log.Debug("copy relayed answer", "leader", rt.Node, "err", err)
		}
		return nil
	})
	if re, ok := errors.AsType[*remoteError](err); ok {
		w.Header().Set(HeaderLeader, rt.Node)
		s.writeRemoteError(w, re)
		return nil
	}
	return err
}

// writeRemoteError answers with another node's error answer unchanged.
func (s *Server) writeRemoteError(w http.ResponseWriter, re *remoteError) {
	switch re.status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	s.writeJSON(w, re.status, ErrorBody{Code: re.code, Error: re.msg})
}

// forwarded reports whether another node sent r: it is served here or
// refused, never sent on.
func forwarded(r *http.Request) bool { return r.Header.Get(HeaderForwarded) != "" }

// internalAct handles POST /internal/v1/worlds/{world}/actions: a client's
// or a play connection's action that another node could not serve.
func (s *Server) internalAct(w http.ResponseWriter, r *http.Request) {
	if !s.forwardedOnly(w, r) {
		return
	}
	s.act(w, r)
}

// internalActBatch handles POST /internal/v1/worlds/{world}/actions:batch.
func (s *Server) internalActBatch(w http.ResponseWriter, r *http.Request) {
	if !s.forwardedOnly(w, r) {
		return
	}
	s.actBatch(w, r)
}

// internalEntity handles GET /internal/v1/worlds/{world}/entities/{entity}:
// a linearizable read that another node could not serve.
func (s *Server) internalEntity(w http.ResponseWriter, r *http.Request) {
	if !s.forwardedOnly(w, r) {
		return
	}
	s.linearizableEntity(w, r)
}
