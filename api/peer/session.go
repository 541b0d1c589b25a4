package peer

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

// SessionCommand handles POST /internal/v1/worlds/{world}/sessions/{op},
// the internal call through which other nodes run play connections'
// session commands on the world's leader. Only forwarded requests are
// served, and never sent on; with auth on, an open or resume also needs
// the player's token. Like the cluster admin endpoints, it relies on the
// HTTP port being reachable only by trusted parties for anything beyond
// that.
func (p *API) SessionCommand(w http.ResponseWriter, r *http.Request) {
	if !p.ForwardedOnly(w, r) {
		return
	}
	kind, ok := edge.SessionOps[r.PathValue("op")]
	if !ok {
		p.WriteError(w, fmt.Errorf("%w: unknown session op %q", fsm.ErrNotFound, r.PathValue("op")), true)
		return
	}
	var req wire.SessionCmd
	if !p.ReadJSON(w, r, p.Config().MaxBodyBytes, &req) {
		return
	}
	c := &fsm.SessionCmd{World: r.PathValue("world"), ID: req.ID, Player: req.Player, Seq: req.Seq, Reason: req.Reason, Node: req.Node,
		Data: edge.DataItems(req.Data)}
	h, err := hex.DecodeString(req.TokenHash)
	if err != nil || (len(h) != fsm.TokenHashLen && len(h) != 0) {
		p.WriteError(w, fmt.Errorf("%w: token_hash must be %d hex bytes", fsm.ErrMalformed, fsm.TokenHashLen), true)
		return
	}
	copy(c.TokenHash[:], h)
	if kind == fsm.CmdSessionData && (c.Player == "" || c.ID == "") {
		// Over this route only a player's own write through their session
		// (checked against the rules' player-writable keys), never a game
		// server's write of any key.
		p.WriteError(w, fmt.Errorf("%w: a data command names its session and the session's player", fsm.ErrMalformed), true)
		return
	}
	if p.Auth() != nil && (kind == fsm.CmdSessionOpen || kind == fsm.CmdSessionResume || kind == fsm.CmdSessionData) {
		id, err := p.Identify(r)
		if err != nil {
			p.WriteError(w, err, true)
			return
		}
		if id.Player != c.Player {
			p.WriteError(w, fmt.Errorf("%w: the token is for player %q, the command names %q", edge.ErrForbidden, id.Player, c.Player), true)
			return
		}
	}
	err = p.RouteCall(c.World, edge.KindSession, edge.PeerHop(r), func(g edge.Group) error {
		ctx, cancel := p.RequestContext(r)
		defer cancel()
		// The forwarded open carries no data: the team comes from the
		// token the calling node passed on.
		p.ClaimTeam(kind, c, edge.Bearer(r))
		info, err := g.Session(ctx, kind, c)
		if err == nil {
			p.WriteJSON(w, http.StatusOK, edge.ToSessionJSON(info))
		}
		return err
	}, nil)
	if err != nil {
		p.WriteError(w, err, true)
	}
}

// SessionAcks handles POST /internal/v1/sessions:acks, the internal
// call through which another node replicates its play connections' acks on
// the leader, many sessions (of the worlds of one group) in one request
// and one command, routed by the first ack's world. Only forwarded
// requests are served (with a cluster secret, only with it:
// cluster_auth.go), and never sent on.
func (p *API) SessionAcks(w http.ResponseWriter, r *http.Request) {
	if !p.ForwardedOnly(w, r) {
		return
	}
	// A batch: up to fsm.MaxSessionAcks acks of long names may pass
	// MaxBodyBytes.
	var req wire.Acks
	if !p.ReadJSON(w, r, p.Config().MaxBatchBodyBytes, &req) {
		return
	}
	acks := make([]fsm.SessionAck, len(req.Acks))
	for i, a := range req.Acks {
		acks[i] = fsm.SessionAck(a)
	}
	if err := fsm.ValidateAcks(acks); err != nil {
		p.WriteError(w, err, true)
		return
	}
	err := p.RouteCall(acks[0].World, edge.KindSession, edge.PeerHop(r), func(g edge.Group) error {
		ctx, cancel := p.RequestContext(r)
		defer cancel()
		n, err := g.SessionAcks(ctx, acks)
		if err == nil {
			p.WriteJSON(w, http.StatusOK, wire.AcksAnswer{Acked: n})
		}
		return err
	}, nil)
	if err != nil {
		p.WriteError(w, err, true)
	}
}
