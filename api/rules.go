package api

import (
	"encoding/json"
	"net/http"
)

// updateRulesRequest is the body of PUT /v1/worlds/{world}/rules.
type updateRulesRequest struct {
	Rules json.RawMessage `json:"rules"`
	// ExpectRulesVersion, when set, is the rules version the update
	// replaces: another update first makes it 409 rules_conflict.
	ExpectRulesVersion uint64 `json:"expect_rules_version,omitempty"`
}

// rulesJSON answers PUT /v1/worlds/{world}/rules.
type rulesJSON struct {
	World        string `json:"world"`
	RulesVersion uint64 `json:"rules_version"`
}

// updateRules handles PUT /v1/worlds/{world}/rules (admin; leader;
// forwarded): the world's whole rules are replaced through the log.
func (s *Server) updateRules(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	var req updateRulesRequest
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
	s.onLeader(w, r, world, KindWrite, body, func(g Group) error {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		v, err := g.UpdateRules(ctx, world, rules, req.ExpectRulesVersion)
		if err != nil {
			return err
		}
		s.writeJSON(w, http.StatusOK, rulesJSON{World: world, RulesVersion: v})
		return nil
	})
}
