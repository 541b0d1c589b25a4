package apitest

import (
	"fmt"
	"sync"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/store"
)

// TableRouter is a Router that answers from a table, per world: a route,
// or an error. A world not in it has no known leader.
type TableRouter struct {
	mu     sync.Mutex
	Routes map[string]edge.Route // world → its route
	Errs   map[string]error      // world → the error its route is
	Asked  int                   // how many times Route was called
}

func (r *TableRouter) Route(world string, kind edge.Kind) (edge.Route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Asked++
	if err := r.Errs[world]; err != nil {
		return edge.Route{}, err
	}
	if rt, ok := r.Routes[world]; ok {
		return rt, nil
	}
	return edge.Route{}, fmt.Errorf("%w: no known leader of %s", store.ErrNotLeader, world)
}

// Set routes world to rt.
func (r *TableRouter) Set(world string, rt edge.Route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Routes[world] = rt
}

// Delete drops world's route.
func (r *TableRouter) Delete(world string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.Routes, world)
}
