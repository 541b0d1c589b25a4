package api

import (
	"encoding/json"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/wire"
)

// createWorldRequest is the body of POST /v1/worlds.
type createWorldRequest struct {
	ID    string          `json:"id"`
	Rules json.RawMessage `json:"rules"`
}

// createWorld handles POST /v1/worlds.
func (s *Server) createWorld(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.WriteError(w, err, true)
		return
	}
	var req createWorldRequest
	if err := edge.DecodeStrict(body, &req); err != nil {
		s.WriteError(w, err, true)
		return
	}
	if err := edge.CheckName("world id", req.ID); err != nil {
		s.WriteError(w, err, true)
		return
	}
	rules, err := edge.DecodeRules(req.Rules)
	if err != nil {
		s.WriteError(w, err, true)
		return
	}
	s.OnLeader(w, r, req.ID, edge.KindWrite, edge.InternalWorldsPath, body, func(g edge.Group) error {
		ctx, cancel := s.RequestContext(r)
		defer cancel()
		if err := g.CreateWorld(ctx, req.ID, rules); err != nil {
			return err
		}
		s.WriteJSON(w, http.StatusCreated, map[string]string{"id": req.ID})
		return nil
	})
}

// listWorlds handles GET /v1/worlds: this node's (possibly stale) view.
func (s *Server) listWorlds(w http.ResponseWriter, r *http.Request) {
	infos := s.b.Worlds()
	out := make([]wire.World, len(infos))
	for i, wi := range infos {
		out[i] = wire.World{ID: wi.ID, Origin: wi.Origin, Seq: wi.Seq, Index: wi.Index, Entities: wi.Entities,
			Players: wi.Players, Hash: wire.Hash(wire.HashString(wi.Hash)), Rules: wi.Rules.Wire(), RulesVersion: wi.RulesVersion}
	}
	s.WriteJSON(w, http.StatusOK, wire.Worlds{Worlds: out})
}

// hash handles GET /v1/worlds/{world}/hash[?seq=N]: this node's state hash
// now or after event N, for comparing replicas at equal seqs.
func (s *Server) hash(w http.ResponseWriter, r *http.Request) {
	seq, err := edge.ParseSeq(r, "seq")
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	world := r.PathValue("world")
	p, err := s.b.Hash(world, seq)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	s.WriteJSON(w, http.StatusOK, wire.HashPoint{World: world, Seq: p.Seq, Index: p.Index, Hash: wire.Hash(wire.HashString(p.Hash))})
}
