package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// act handles POST /v1/worlds/{world}/actions: one action, answered with its
// committed event (200 whatever its status) or an error.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	player, err := s.identify(r)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	a, err := decodeAction(body, r.PathValue("world"), player)
	if err == nil {
		err = s.checkBan(a.World, a.Player)
	}
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	err = s.route(a.World, KindWrite, forwarded(r), func(g Group) error {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		ev, dup, err := g.Act(ctx, a)
		if err == nil {
			s.writeJSON(w, http.StatusOK, eventJSON(ev, dup))
		}
		return err
	}, func(rt Route) error {
		return s.relay(w, r, rt, http.MethodPost, internalActPath(a.World), body)
	})
	if err != nil {
		s.writeError(w, err, true)
	}
}

// eventJSON is an event's wire form, marked when it answers a repeat.
func eventJSON(ev *fsm.Event, dup bool) wire.Event {
	j := ev.Wire()
	j.Duplicate = dup
	return j
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
	player, err := s.identify(r)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	body, err := readBody(w, r, s.cfg.MaxBatchBodyBytes)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	var req batchRequest
	if err := decodeStrict(body, &req); err != nil {
		s.writeError(w, err, true)
		return
	}
	switch {
	case len(req.Actions) == 0:
		s.writeError(w, fmt.Errorf("%w: a batch needs at least one action", fsm.ErrMalformed), true)
		return
	case len(req.Actions) > s.cfg.MaxBatchActions:
		s.writeError(w, fmt.Errorf("%w: %d actions, limit %d", errTooLarge, len(req.Actions), s.cfg.MaxBatchActions), true)
		return
	}
	world := r.PathValue("world")
	err = s.route(world, KindWrite, forwarded(r), func(g Group) error {
		s.writeJSON(w, http.StatusOK, s.runBatch(r, g, world, player, req.Actions))
		return nil
	}, func(rt Route) error {
		return s.relay(w, r, rt, http.MethodPost, internalBatchPath(world), body)
	})
	if err != nil {
		s.writeError(w, err, true)
	}
}

// runBatch runs a batch's actions on g, concurrently, and answers each.
func (s *Server) runBatch(r *http.Request, g Group, world, player string, actions []json.RawMessage) batchResponse {
	results := make([]any, len(actions))
	sem := make(chan struct{}, s.cfg.BatchConcurrency)
	var wg sync.WaitGroup
	for i, raw := range actions {
		a, err := decodeAction(raw, world, player)
		if err == nil {
			err = s.checkBan(world, a.Player)
		}
		if err != nil {
			_, results[i] = s.errorBody(fmt.Errorf("action %d: %w", i, err), true)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// The request's recover does not reach this goroutine.
			defer func() {
				if v := recover(); v != nil {
					s.log.Error("batch action panic", "panic", v, "stack", string(debug.Stack()))
					_, results[i] = s.errorBody(fmt.Errorf("%w: %v", errInternal, v), true)
				}
			}()
			ctx, cancel := s.requestContext(r)
			defer cancel()
			ev, dup, err := g.Act(ctx, a)
			if err != nil {
				_, results[i] = s.errorBody(err, true)
				return
			}
			results[i] = eventJSON(ev, dup)
		})
	}
	wg.Wait()
	return batchResponse{Results: results}
}
