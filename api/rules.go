package api

import (
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// updateRules handles PUT /v1/worlds/{world}/rules (admin; leader;
// forwarded): the world's whole rules are replaced through the log.
func (s *Server) updateRules(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	var req wire.RulesUpdate
	if err := decodeStrict(body, &req); err != nil {
		s.writeError(w, err, true)
		return
	}
	world := r.PathValue("world")
	if err := checkName("world id", world); err != nil {
		s.writeError(w, err, true)
		return
	}
	rules, err := decodeRules(req.Rules)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	s.onLeader(w, r, world, KindWrite, internalWorldPath(world, "/rules"), body, func(g Group) error {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		v, err := g.UpdateRules(ctx, world, rules, req.ExpectRulesVersion)
		if err != nil {
			return err
		}
		s.writeJSON(w, http.StatusOK, wire.RulesVersion{World: world, RulesVersion: v})
		return nil
	})
}
