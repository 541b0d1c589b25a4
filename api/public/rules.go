package public

import (
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/wire"
)

// UpdateRules handles PUT /v1/worlds/{world}/rules (admin; leader;
// forwarded): the world's whole rules are replaced through the log.
func (p *API) UpdateRules(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, p.Config().MaxBodyBytes)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	var req wire.RulesUpdate
	if err := edge.DecodeStrict(body, &req); err != nil {
		p.WriteError(w, err, true)
		return
	}
	world := r.PathValue("world")
	if err := edge.CheckName("world id", world); err != nil {
		p.WriteError(w, err, true)
		return
	}
	rules, err := edge.DecodeRules(req.Rules)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	p.OnLeader(w, r, world, edge.KindWrite, edge.InternalWorldPath(world, "/rules"), body, func(g edge.Group) error {
		ctx, cancel := p.RequestContext(r)
		defer cancel()
		v, err := g.UpdateRules(ctx, world, rules, req.ExpectRulesVersion)
		if err != nil {
			return err
		}
		p.WriteJSON(w, http.StatusOK, wire.RulesVersion{World: world, RulesVersion: v})
		return nil
	})
}
