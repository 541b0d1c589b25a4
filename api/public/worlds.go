package public

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

// CreateWorld handles POST /v1/worlds.
func (p *API) CreateWorld(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, p.Config().MaxBodyBytes)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	var req createWorldRequest
	if err := edge.DecodeStrict(body, &req); err != nil {
		p.WriteError(w, err, true)
		return
	}
	if err := edge.CheckName("world id", req.ID); err != nil {
		p.WriteError(w, err, true)
		return
	}
	rules, err := edge.DecodeRules(req.Rules)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	p.OnLeader(w, r, req.ID, edge.KindWrite, edge.InternalWorldsPath, body, func(g edge.Group) error {
		ctx, cancel := p.RequestContext(r)
		defer cancel()
		if err := g.CreateWorld(ctx, req.ID, rules); err != nil {
			return err
		}
		p.WriteJSON(w, http.StatusCreated, map[string]string{"id": req.ID})
		return nil
	})
}

// ListWorlds handles GET /v1/worlds: this node's (possibly stale) view.
func (p *API) ListWorlds(w http.ResponseWriter, r *http.Request) {
	infos := p.Backend().Worlds()
	out := make([]wire.World, len(infos))
	for i, wi := range infos {
		out[i] = wire.World{ID: wi.ID, Origin: wi.Origin, Seq: wi.Seq, Index: wi.Index, Entities: wi.Entities,
			Players: wi.Players, Hash: wire.Hash(wire.HashString(wi.Hash)), Rules: wi.Rules.Wire(), RulesVersion: wi.RulesVersion}
	}
	p.WriteJSON(w, http.StatusOK, wire.Worlds{Worlds: out})
}

// Hash handles GET /v1/worlds/{world}/hash[?seq=N]: this node's state hash
// now or after event N, for comparing replicas at equal seqs.
func (p *API) Hash(w http.ResponseWriter, r *http.Request) {
	seq, err := edge.ParseSeq(r, "seq")
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	world := r.PathValue("world")
	hp, err := p.Backend().Hash(world, seq)
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	p.WriteJSON(w, http.StatusOK, wire.HashPoint{World: world, Seq: hp.Seq, Index: hp.Index, Hash: wire.Hash(wire.HashString(hp.Hash))})
}
