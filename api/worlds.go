package api

import (
	"encoding/json"
	"net/http"

	"github.com/gsd-dev/gsd/fsm"
)

// createWorldRequest is the body of POST /v1/worlds.
type createWorldRequest struct {
	ID    string          `json:"id"`
	Rules json.RawMessage `json:"rules"`
}

// createWorld handles POST /v1/worlds.
func (s *Server) createWorld(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	var req createWorldRequest
	if err := decodeStrict(body, &req); err != nil {
		s.writeError(w, err, true)
		return
	}
	if err := checkName("world id", req.ID); err != nil {
		s.writeError(w, err, true)
		return
	}
	rules, err := decodeRules(req.Rules)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	s.onLeader(w, r, req.ID, KindWrite, body, func(g Group) error {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		if err := g.CreateWorld(ctx, req.ID, rules); err != nil {
			return err
		}
		s.writeJSON(w, http.StatusCreated, map[string]string{"id": req.ID})
		return nil
	})
}

// worldJSON is one world in GET /v1/worlds.
type worldJSON struct {
	ID       string    `json:"id"`
	Origin   string    `json:"origin,omitempty"`
	Seq      uint64    `json:"seq"`
	Index    uint64    `json:"index"`
	Entities int       `json:"entities"`
	Players  int       `json:"players"`
	Hash     string    `json:"hash"`
	Rules    fsm.Rules `json:"rules"`
	// RulesVersion is 1 at creation and rises with each rules update.
	RulesVersion uint64 `json:"rules_version"`
}

// listWorlds handles GET /v1/worlds: this node's (possibly stale) view.
func (s *Server) listWorlds(w http.ResponseWriter, r *http.Request) {
	infos := s.b.Worlds()
	out := make([]worldJSON, len(infos))
	for i, wi := range infos {
		out[i] = worldJSON{ID: wi.ID, Origin: wi.Origin, Seq: wi.Seq, Index: wi.Index,
			Entities: wi.Entities, Players: wi.Players, Hash: fsm.HashString(wi.Hash), Rules: wi.Rules, RulesVersion: wi.RulesVersion}
	}
	s.writeJSON(w, http.StatusOK, map[string][]worldJSON{"worlds": out})
}

// hashJSON answers GET /v1/worlds/{world}/hash.
type hashJSON struct {
	World string `json:"world"`
	Seq   uint64 `json:"seq"`
	Index uint64 `json:"index"`
	Hash  string `json:"hash"`
}

// hash handles GET /v1/worlds/{world}/hash[?seq=N]: this node's state hash
// now or after event N, for comparing replicas at equal seqs.
func (s *Server) hash(w http.ResponseWriter, r *http.Request) {
	seq, err := parseSeq(r, "seq")
	if err != nil {
		s.writeError(w, err, false)
		return
	}
	world := r.PathValue("world")
	p, err := s.b.Hash(world, seq)
	if err != nil {
		s.writeError(w, err, false)
		return
	}
	s.writeJSON(w, http.StatusOK, hashJSON{World: world, Seq: p.Seq, Index: p.Index, Hash: fsm.HashString(p.Hash)})
}
