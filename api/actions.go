package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
)

// act handles POST /v1/worlds/{world}/actions: one action, answered with its
// committed event (200 whatever its status) or an error.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.WriteError(w, err, true)
		return
	}
	player, err := s.Identify(r)
	if err != nil {
		s.WriteError(w, err, true)
		return
	}
	a, err := edge.DecodeAction(body, r.PathValue("world"), player)
	if err == nil {
		err = s.CheckBan(a.World, a.Player)
	}
	if err != nil {
		s.WriteError(w, err, true)
		return
	}
	err = s.RouteCall(a.World, edge.KindWrite, edge.IsForwarded(r), func(g edge.Group) error {
		ctx, cancel := s.RequestContext(r)
		defer cancel()
		ev, dup, err := g.Act(ctx, a)
		if err == nil {
			s.WriteJSON(w, http.StatusOK, edge.EventJSON(ev, dup))
		}
		return err
	}, func(rt edge.Route) error {
		return s.Relay(w, r, rt, http.MethodPost, edge.InternalActPath(a.World), body)
	})
	if err != nil {
		s.WriteError(w, err, true)
	}
}

// batchRequest is the body of POST /v1/worlds/{world}/actions:batch.
type batchRequest struct {
	Actions []json.RawMessage `json:"actions"`
}

// batchResponse answers a batch: one item per action, in request order,
// each an event (wire.Event) or an ErrorBody.
type batchResponse struct {
	Results []any `json:"results"`
}

// actBatch handles POST /v1/worlds/{world}/actions:batch: the actions are
// submitted concurrently, so the leader's batcher packs them into few log
// entries, and each is answered on its own. A malformed action fails only
// its own item. An item that meets a leadership change is answered
// not_leader (or outcome_unknown) for the client to retry with the same seq.
func (s *Server) actBatch(w http.ResponseWriter, r *http.Request) {
	player, err := s.Identify(r)
	if err != nil {
		s.WriteError(w, err, true)
		return
	}
	body, err := edge.ReadBody(w, r, s.cfg.MaxBatchBodyBytes)
	if err != nil {
		s.WriteError(w, err, true)
		return
	}
	var req batchRequest
	if err := edge.DecodeStrict(body, &req); err != nil {
		s.WriteError(w, err, true)
		return
	}
	switch {
	case len(req.Actions) == 0:
		s.WriteError(w, fmt.Errorf("%w: a batch needs at least one action", fsm.ErrMalformed), true)
		return
	case len(req.Actions) > s.cfg.MaxBatchActions:
		s.WriteError(w, fmt.Errorf("%w: %d actions, limit %d", edge.ErrTooLarge, len(req.Actions), s.cfg.MaxBatchActions), true)
		return
	}
	world := r.PathValue("world")
	err = s.RouteCall(world, edge.KindWrite, edge.IsForwarded(r), func(g edge.Group) error {
		s.WriteJSON(w, http.StatusOK, s.runBatch(r, g, world, player, req.Actions))
		return nil
	}, func(rt edge.Route) error {
		return s.Relay(w, r, rt, http.MethodPost, edge.InternalBatchPath(world), body)
	})
	if err != nil {
		s.WriteError(w, err, true)
	}
}

// runBatch runs a batch's actions on g, concurrently, and answers each.
func (s *Server) runBatch(r *http.Request, g edge.Group, world, player string, actions []json.RawMessage) batchResponse {
	results := make([]any, len(actions))
	sem := make(chan struct{}, s.cfg.BatchConcurrency)
	var wg sync.WaitGroup
	for i, raw := range actions {
		a, err := edge.DecodeAction(raw, world, player)
		if err == nil {
			err = s.CheckBan(world, a.Player)
		}
		if err != nil {
			_, results[i] = s.ErrorFor(fmt.Errorf("action %d: %w", i, err), true)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// The request's recover does not reach this goroutine.
			defer func() {
				if v := recover(); v != nil {
					s.log.Error("batch action panic", "panic", v, "stack", string(debug.Stack()))
					_, results[i] = s.ErrorFor(fmt.Errorf("%w: %v", edge.ErrInternal, v), true)
				}
			}()
			ctx, cancel := s.RequestContext(r)
			defer cancel()
			ev, dup, err := g.Act(ctx, a)
			if err != nil {
				_, results[i] = s.ErrorFor(err, true)
				return
			}
			results[i] = edge.EventJSON(ev, dup)
		})
	}
	wg.Wait()
	return batchResponse{Results: results}
}
