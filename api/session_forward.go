package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// Any node serves play connections. Their session commands and actions go
// to the leader: directly when this node leads, else over HTTP with
// HeaderForwarded set (actions to the public actions endpoint, session
// commands to the internal sessions endpoint), while the events are pushed
// from this node's own feed. A forwarded answer that is an error comes back
// as a *remoteError, so classify maps it to the leader's status and code.

// remoteError is an error answer of the leader to a forwarded call.
type remoteError struct {
	status int
	code   string
	msg    string
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("leader: %s (%d %s)", e.msg, e.status, e.code)
}

// sessionOps names the session commands the internal endpoint accepts.
var sessionOps = map[string]fsm.CmdKind{
	"open":   fsm.CmdSessionOpen,
	"ack":    fsm.CmdSessionAck,
	"resume": fsm.CmdSessionResume,
	"close":  fsm.CmdSessionClose,
}

var sessionOpNames = map[fsm.CmdKind]string{
	fsm.CmdSessionOpen:   "open",
	fsm.CmdSessionAck:    "ack",
	fsm.CmdSessionResume: "resume",
	fsm.CmdSessionClose:  "close",
}

// toSessionJSON is a session's wire form.
func toSessionJSON(i fsm.SessionInfo) wire.SessionInfo {
	return wire.SessionInfo{World: i.World, ID: i.ID, Player: i.Player, Acked: i.Acked, Epoch: i.Epoch, Node: i.Node,
		Opened: i.Opened, Seen: i.Seen, Replaced: i.Replaced, Kicked: i.Kicked, Data: i.Data}
}

// sessionInfo is the session a wire form names.
func sessionInfo(j wire.SessionInfo) fsm.SessionInfo {
	return fsm.SessionInfo{World: j.World, ID: j.ID, Player: j.Player, Acked: j.Acked, Epoch: j.Epoch, Node: j.Node,
		Opened: j.Opened, Seen: j.Seen, Replaced: j.Replaced, Kicked: j.Kicked, Data: j.Data}
}

// nodeID is this node's id, recorded in the sessions it holds.
func (s *Server) nodeID() string { return s.b.Status().ID }

// session runs a session command on the leader: here when this node leads,
// else forwarded. token is the player's JWT, sent along with auth on.
func (s *Server) session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd, token string) (fsm.SessionInfo, error) {
	if s.b.IsLeader() {
		info, err := s.b.Session(ctx, kind, c)
		if !errors.Is(err, store.ErrNotLeader) || s.b.IsLeader() {
			return info, err
		}
	}
	op := sessionOpNames[kind]
	body, _ := json.Marshal(wire.SessionCmd{ID: c.ID, Player: c.Player, TokenHash: hex.EncodeToString(c.TokenHash[:]),
		Seq: c.Seq, Reason: c.Reason, Node: c.Node})
	var out wire.SessionInfo
	if err := s.callLeader(ctx, "/v1/worlds/"+url.PathEscape(c.World)+"/sessions/"+op, body, token, &out); err != nil {
		return fsm.SessionInfo{}, err
	}
	return sessionInfo(out), nil
}

// actOnLeader runs a play connection's action on the leader: here when
// this node leads, else forwarded to the leader's actions endpoint.
func (s *Server) actOnLeader(ctx context.Context, a *fsm.Action, raw json.RawMessage, token string) (wire.Event, error) {
	if s.b.IsLeader() {
		ev, dup, err := s.b.Act(ctx, a)
		if err == nil {
			return eventJSON(ev, dup), nil
		}
		if !errors.Is(err, store.ErrNotLeader) || s.b.IsLeader() {
			return wire.Event{}, err
		}
	}
	// The client may leave out the player; the leader needs it (auth off)
	// or checks it against the token (auth on).
	var req actionRequest
	_ = json.Unmarshal(raw, &req) // decodeAction has accepted raw
	req.Player = a.Player
	body, _ := json.Marshal(req)
	var ev wire.Event
	err := s.callLeader(ctx, "/v1/worlds/"+url.PathEscape(a.World)+"/actions", body, token, &ev)
	return ev, err
}

// callLeader POSTs body to the leader's path and decodes a 200 answer into
// out; any other answer becomes a *remoteError, a failed round trip the
// error forwardError gives (outcome_unknown once the request may have left).
func (s *Server) callLeader(ctx context.Context, path string, body []byte, token string, out any) error {
	id, addr := s.b.Leader()
	if addr == "" {
		return fmt.Errorf("%w: no known leader", store.ErrNotLeader)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, leaderURL(addr)+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: leader %s has a bad address %q: %v", store.ErrNotLeader, id, addr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderForwarded, "1")
	s.setClusterKey(req.Header)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.fwd.Do(req)
	if err != nil {
		s.metrics.forwards.WithLabelValues("error").Inc()
		return forwardError(id, err, true)
	}
	defer resp.Body.Close()
	s.metrics.forwards.WithLabelValues("ok").Inc()
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBatchBodyBytes))
	if err != nil {
		return forwardError(id, err, true)
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
			eb = ErrorBody{Code: CodeInternal, Error: fmt.Sprintf("undecodable answer: %.200s", b)}
		}
		return &remoteError{status: resp.StatusCode, code: eb.Code, msg: eb.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: leader %s: undecodable answer: %v", errInternal, id, err)
	}
	return nil
}

// sessionCommand handles POST /v1/worlds/{world}/sessions/{op}, the
// internal endpoint through which followers run play connections' session
// commands on the leader. Only forwarded requests are served; with auth on,
// an open or resume also needs the player's token. Like the cluster admin
// endpoints, it relies on the HTTP port being reachable only by trusted
// parties for anything beyond that.
func (s *Server) sessionCommand(w http.ResponseWriter, r *http.Request) {
	if !s.forwardedOnly(w, r) {
		return
	}
	kind, ok := sessionOps[r.PathValue("op")]
	if !ok {
		s.writeError(w, fmt.Errorf("%w: unknown session op %q", fsm.ErrNotFound, r.PathValue("op")), true)
		return
	}
	var req wire.SessionCmd
	if !s.readJSON(w, r, s.cfg.MaxBodyBytes, &req) {
		return
	}
	c := &fsm.SessionCmd{World: r.PathValue("world"), ID: req.ID, Player: req.Player, Seq: req.Seq, Reason: req.Reason, Node: req.Node}
	h, err := hex.DecodeString(req.TokenHash)
	if err != nil || (len(h) != fsm.TokenHashLen && len(h) != 0) {
		s.writeError(w, fmt.Errorf("%w: token_hash must be %d hex bytes", fsm.ErrMalformed, fsm.TokenHashLen), true)
		return
	}
	copy(c.TokenHash[:], h)
	if s.auth != nil && (kind == fsm.CmdSessionOpen || kind == fsm.CmdSessionResume) {
		player, err := s.identify(r)
		if err != nil {
			s.writeError(w, err, true)
			return
		}
		if player != c.Player {
			s.writeError(w, fmt.Errorf("%w: the token is for player %q, the command names %q", errForbidden, player, c.Player), true)
			return
		}
	}
	if !s.b.IsLeader() {
		s.writeError(w, fmt.Errorf("%w: a forwarded request reached a non-leader", store.ErrNotLeader), true)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	info, err := s.b.Session(ctx, kind, c)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	s.writeJSON(w, http.StatusOK, toSessionJSON(info))
}
