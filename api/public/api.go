package public

import "github.com/gsd-dev/gsd/api/edge"

// API serves the public HTTP JSON routes over the edge's shared core.
type API struct{ *edge.Core }

// New returns the public routes' handlers over core.
func New(core *edge.Core) *API { return &API{Core: core} }
