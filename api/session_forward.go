package api

import (
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Any node serves play connections. Their session commands and actions go
// to the world's leader (the Router says where): directly when this node
// leads, else by internal calls (internal.go), while the events are pushed
// from this node's own feed. An internal call's answer that is an error
// comes back as a *RemoteError, so Classify maps it to the leader's status
// and code.

// sessionCommand handles POST /internal/v1/worlds/{world}/sessions/{op},
// the internal call through which other nodes run play connections'
// session commands on the world's leader. Only forwarded requests are
// served, and never sent on; with auth on, an open or resume also needs
// the player's token. Like the cluster admin endpoints, it relies on the
// HTTP port being reachable only by trusted parties for anything beyond
// that.
func (s *Server) sessionCommand(w http.ResponseWriter, r *http.Request) {
	if !s.ForwardedOnly(w, r) {
		return
	}
	kind, ok := edge.SessionOps[r.PathValue("op")]
	if !ok {
		s.WriteError(w, fmt.Errorf("%w: unknown session op %q", fsm.ErrNotFound, r.PathValue("op")), true)
		return
	}
	var req wire.SessionCmd
	if !s.ReadJSON(w, r, s.cfg.MaxBodyBytes, &req) {
		return
	}
	c := &fsm.SessionCmd{World: r.PathValue("world"), ID: req.ID, Player: req.Player, Seq: req.Seq, Reason: req.Reason, Node: req.Node}
	h, err := hex.DecodeString(req.TokenHash)
	if err != nil || (len(h) != fsm.TokenHashLen && len(h) != 0) {
		s.WriteError(w, fmt.Errorf("%w: token_hash must be %d hex bytes", fsm.ErrMalformed, fsm.TokenHashLen), true)
		return
	}
	copy(c.TokenHash[:], h)
	if s.Auth() != nil && (kind == fsm.CmdSessionOpen || kind == fsm.CmdSessionResume) {
		player, err := s.Identify(r)
		if err != nil {
			s.WriteError(w, err, true)
			return
		}
		if player != c.Player {
			s.WriteError(w, fmt.Errorf("%w: the token is for player %q, the command names %q", edge.ErrForbidden, player, c.Player), true)
			return
		}
	}
	err = s.RouteCall(c.World, edge.KindSession, true, func(g edge.Group) error {
		ctx, cancel := s.RequestContext(r)
		defer cancel()
		info, err := g.Session(ctx, kind, c)
		if err == nil {
			s.WriteJSON(w, http.StatusOK, edge.ToSessionJSON(info))
		}
		return err
	}, nil)
	if err != nil {
		s.WriteError(w, err, true)
	}
}
