package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// The aggregated views a relay serves: it learns them from the upstream
// (the views route with rules=true answers the rules a relay of its view
// makes them with: only the views that view may see whole, the leak rule
// applied by the node) each time it opens a world, so after a change of
// the world's rules, which ends the follow, the next viewer's follow
// learns the new ones. Its pipelines make them over the events the
// relay holds, as a node's do over its feed: view frames in the watch
// stream and its segments, and the views route.

// fetchRules asks the upstream for the rules the relay makes world's
// aggregated views with, waiting at most OpenTimeout. An upstream that
// answers no rules (one older than the rules=true query, or without the
// views route) gives none: the relay serves no views.
func (f *follow) fetchRules(ctx context.Context) (fsm.Rules, error) {
	cfg := f.r.cfg
	q := url.Values{"rules": {"true"}}
	if cfg.View != "" {
		q.Set("view", cfg.View)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.OpenTimeout)
	defer cancel()
	u := strings.TrimSuffix(cfg.Upstream, "/") + "/v1/worlds/" + url.PathEscape(f.world) + "/views?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fsm.Rules{}, fmt.Errorf("%w: upstream %s: %v", ErrBadRequest, cfg.Upstream, err)
	}
	if err := f.r.authorize(req); err != nil {
		return fsm.Rules{}, err
	}
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return fsm.Rules{}, fmt.Errorf("upstream %s: views: %w", cfg.Upstream, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ue := upstreamError(resp)
		if ue.Status == http.StatusNotFound && ue.Code == "" {
			return fsm.Rules{}, nil // an upstream without the route: no views
		}
		return fsm.Rules{}, ue
	}
	var vs wire.Views
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&vs); err != nil {
		return fsm.Rules{}, fmt.Errorf("%w: upstream's views of world %s: %v", wire.ErrMalformed, f.world, err)
	}
	var rules fsm.Rules
	if len(vs.Rules) == 0 {
		return rules, nil
	}
	if err := json.Unmarshal(vs.Rules, &rules); err != nil {
		return fsm.Rules{}, fmt.Errorf("%w: upstream's view rules of world %s: %v", wire.ErrMalformed, f.world, err)
	}
	return rules, nil
}

// rules returns the rules the relay's pipelines of world run under: the
// views its follow learned, no restricted field (the upstream cut the
// events to the relay's view).
func (r *Relay) rules(world string) (fsm.Rules, error) {
	r.mu.Lock()
	f := r.follows[world]
	r.mu.Unlock()
	if f == nil {
		return fsm.Rules{}, nil
	}
	return f.rules, nil
}

// Views handles GET /v1/worlds/{world}/views[?delay=D][&rules=true] as a
// node does for the relay's view: every aggregated view it may see, as of
// the seq they are at, from the relay's pipeline of that delay. With
// rules=true the answer carries the rules the relay makes them with, for
// a relay that follows this one.
func (r *Relay) Views(w http.ResponseWriter, req *http.Request) {
	world := req.PathValue("world")
	f, seq, views, err := r.views(req)
	if err != nil {
		r.writeError(w, err)
		return
	}
	out := wire.Views{World: world, Seq: seq, Views: map[string]wire.ViewFrame{}}
	for _, v := range views {
		out.Views[v.Name] = v
	}
	if req.URL.Query().Get("rules") == "true" {
		if out.Rules, err = json.Marshal(f.rules); err != nil {
			r.writeError(w, err)
			return
		}
	}
	writeJSON(w, out)
}

// View handles GET /v1/worlds/{world}/views/{name}: one aggregated view,
// as Views serves it; one the relay does not serve is not_found (404).
func (r *Relay) View(w http.ResponseWriter, req *http.Request) {
	_, _, views, err := r.views(req)
	if err != nil {
		r.writeError(w, err)
		return
	}
	name := req.PathValue("name")
	for _, v := range views {
		if v.Name == name {
			writeJSON(w, v)
			return
		}
	}
	r.writeError(w, fmt.Errorf("%w: world %s has no view %q this relay serves", ErrNoView, req.PathValue("world"), name))
}

// views returns the views of the request's world and delay, and the
// follow they are made from. The request counts as a viewer while it
// runs.
func (r *Relay) views(req *http.Request) (*follow, uint64, []wire.ViewFrame, error) {
	world := req.PathValue("world")
	v, events, err := r.viewer(req)
	if err != nil {
		return nil, 0, nil, err
	}
	if events {
		return nil, 0, nil, fmt.Errorf("%w: views have no mode", ErrBadRequest)
	}
	if err := r.admit(world); err != nil {
		return nil, 0, nil, err
	}
	defer r.leave(world)
	f, err := r.followOf(req.Context(), world)
	if err != nil {
		return nil, 0, nil, err
	}
	seq, views, err := r.hub.Views(world, v)
	if err != nil {
		return nil, 0, nil, err
	}
	return f, seq, views, nil
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
