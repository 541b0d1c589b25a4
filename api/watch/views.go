package watch

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
)

// registerViews adds the aggregated views' HTTP routes to mux.
func (s *Service) registerViews(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/worlds/{world}/views", s.Views)
	mux.HandleFunc("GET /v1/worlds/{world}/views/{name}", s.View)
}

// Views handles GET /v1/worlds/{world}/views[?view=CLASS][&delay=D][&rules=true]:
// every aggregated view of the world's rules that the caller's view may
// see, as of the seq they are at, from the same pipeline as the watch (the
// same credential rules, view and delay; a view the caller may not see is
// left out); with rules=true, also the rules a relay of that view makes
// them with (spectator.ViewRules).
func (s *Service) Views(w http.ResponseWriter, r *http.Request) {
	seq, views, err := s.views(r)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	out := wire.Views{World: r.PathValue("world"), Seq: seq, Views: map[string]wire.ViewFrame{}}
	for _, v := range views {
		out.Views[v.Name] = v
	}
	if r.URL.Query().Get("rules") == "true" {
		// What a relay of the caller's view makes these views with.
		if out.Rules, err = s.viewRules(r); err != nil {
			s.WriteError(w, err, false)
			return
		}
	}
	s.WriteJSON(w, http.StatusOK, out)
}

// viewRules returns, as JSON, the rules a relay of the caller's view
// makes its aggregated views with (spectator.ViewRules).
func (s *Service) viewRules(r *http.Request) (json.RawMessage, error) {
	v, _, err := s.viewer(r)
	if err != nil {
		return nil, err
	}
	rules, _, err := rulesOf(s.Backend(), r.PathValue("world"))
	if err != nil {
		return nil, err
	}
	vr, err := spectator.ViewRules(rules, v)
	if err != nil {
		return nil, classify(err)
	}
	return json.Marshal(vr)
}

// View handles GET /v1/worlds/{world}/views/{name}: one aggregated view,
// as Views serves it; a view the rules do not declare, or that the
// caller's view may not see, is not_found (404).
func (s *Service) View(w http.ResponseWriter, r *http.Request) {
	_, views, err := s.views(r)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	name := r.PathValue("name")
	for _, v := range views {
		if v.Name == name {
			s.WriteJSON(w, http.StatusOK, v)
			return
		}
	}
	s.WriteError(w, fmt.Errorf("%w: world %s has no view %q this caller may see", fsm.ErrNotFound, r.PathValue("world"), name), false)
}

// views resolves the caller as the watch route does and returns the
// views its view may see, and their seq.
func (s *Service) views(r *http.Request) (uint64, []wire.ViewFrame, error) {
	v, events, err := s.viewer(r)
	if err != nil {
		return 0, nil, err
	}
	if events {
		return 0, nil, fmt.Errorf("%w: views have no mode", fsm.ErrMalformed)
	}
	select {
	case <-s.Closing().Done():
		return 0, nil, edge.ErrUnavailable
	default:
	}
	// The hub ends a pipeline that runs under older rules (Hub.Join).
	seq, views, err := s.hub.Views(r.PathValue("world"), v)
	if err != nil {
		return 0, nil, classify(err)
	}
	return seq, views, nil
}
