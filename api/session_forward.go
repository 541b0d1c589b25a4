package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Any node serves play connections. Their session commands and actions go
// to the world's leader (the Router says where): directly when this node
// leads, else by internal calls (internal.go), while the events are pushed
// from this node's own feed. An internal call's answer that is an error
// comes back as a *remoteError, so classify maps it to the leader's status
// and code.

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

// session runs a session command on the world's leader: here when this
// node leads, else by an internal call. token is the player's JWT, sent
// along with auth on.
func (s *Server) session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd, token string) (fsm.SessionInfo, error) {
	var info fsm.SessionInfo
	err := s.route(c.World, KindSession, false, func(g Group) error {
		var err error
		info, err = g.Session(ctx, kind, c)
		return err
	}, func(rt Route) error {
		body, _ := json.Marshal(wire.SessionCmd{ID: c.ID, Player: c.Player, TokenHash: hex.EncodeToString(c.TokenHash[:]),
			Seq: c.Seq, Reason: c.Reason, Node: c.Node})
		var out wire.SessionInfo
		if err := s.callNode(ctx, rt, http.MethodPost, internalSessionPath(c.World, sessionOpNames[kind]), body, token, &out); err != nil {
			return err
		}
		info = sessionInfo(out)
		return nil
	})
	return info, err
}

// actOnLeader runs a play connection's action on the world's leader: here
// when this node leads, else by an internal call.
func (s *Server) actOnLeader(ctx context.Context, a *fsm.Action, raw json.RawMessage, token string) (wire.Event, error) {
	var ev wire.Event
	err := s.route(a.World, KindWrite, false, func(g Group) error {
		e, dup, err := g.Act(ctx, a)
		if err == nil {
			ev = eventJSON(e, dup)
		}
		return err
	}, func(rt Route) error {
		// The client may leave out the player; the leader needs it (auth
		// off) or checks it against the token (auth on).
		var req actionRequest
		_ = json.Unmarshal(raw, &req) // decodeAction has accepted raw
		req.Player = a.Player
		body, _ := json.Marshal(req)
		return s.callNode(ctx, rt, http.MethodPost, internalActPath(a.World), body, token, &ev)
	})
	return ev, err
}

// sessionCommand handles POST /internal/v1/worlds/{world}/sessions/{op},
// the internal call through which other nodes run play connections'
// session commands on the world's leader. Only forwarded requests are
// served, and never sent on; with auth on, an open or resume also needs
// the player's token. Like the cluster admin endpoints, it relies on the
// HTTP port being reachable only by trusted parties for anything beyond
// that.
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
	err = s.route(c.World, KindSession, true, func(g Group) error {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		info, err := g.Session(ctx, kind, c)
		if err == nil {
			s.writeJSON(w, http.StatusOK, toSessionJSON(info))
		}
		return err
	}, nil)
	if err != nil {
		s.writeError(w, err, true)
	}
}
