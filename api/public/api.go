package public

import (
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
)

// API serves the public HTTP JSON routes over the edge's shared core.
type API struct {
	*edge.Core
	vis *edge.Visibility // worlds' visibility rules, compiled
}

// New returns the public routes' handlers over core.
func New(core *edge.Core) *API { return &API{Core: core, vis: edge.NewVisibility(core.Backend())} }

// Register adds the public routes to mux.
func (p *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/worlds", p.CreateWorld)
	mux.HandleFunc("GET /v1/worlds", p.ListWorlds)
	mux.HandleFunc("GET /v1/worlds/{world}", p.World)
	mux.HandleFunc("PUT /v1/worlds/{world}/rules", p.UpdateRules)
	mux.HandleFunc("POST /v1/worlds/{world}/actions", p.Act)
	mux.HandleFunc("POST /v1/worlds/{world}/actions:batch", p.ActBatch)
	mux.HandleFunc("GET /v1/worlds/{world}/entities/{entity}", p.Entity)
	mux.HandleFunc("GET /v1/worlds/{world}/hash", p.Hash)
}
