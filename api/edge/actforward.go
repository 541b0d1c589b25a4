package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// A play action (WebSocket or UDP) that enters a node which does not lead
// its world reaches the leader through the compact act route, not the
// public action route's internal twin:
//
//   - the follower sends the action it has already decoded and checked
//     (its identity from the hello's token included) in the log's own
//     binary form (fsm.EncodeBatch of CmdAction commands), so it
//     re-marshals no JSON and the leader decodes no JSON;
//   - the leader trusts the player and role the action carries when the
//     call is a peer's beyond doubt: with a cluster secret (checkAccess
//     has compared it before the handler runs) or mutual TLS (the
//     connection carries a certificate of the cluster). The follower
//     verified the player's token at the hello and refuses an action
//     naming another player (DecodeAction), so verifying the same token
//     again per action buys nothing. Without either, anyone who reaches
//     the port may call the route, so the leader verifies the token
//     (auth on) as the public route does and refuses an action for a
//     player the token does not name; with auth off the action carries
//     no role, as on the public route;
//   - the answer is the leader's uncut event (the follower cuts it to the
//     player's view, as when it leads: api/play views.go), or the error's
//     status, code and message, which the follower turns into the
//     *RemoteError the old route gave, so outcomes and codes are those of
//     the direct path.
//
// Everything else is the internal call's: the deadline (ForwardTimeout),
// HeaderForwarded (never sent on), outcome_unknown once the request may
// have left, and the idempotency of the seq (the leader's group decides a
// repeat). A leader of an older version has no such route: its mux
// answers 404 without HeaderActRoute, which changed nothing, so the
// follower sends the action again by the old route, and keeps doing so
// for that leader for oldActRouteRecheck.

// HeaderActRoute marks every answer of the compact act route, so that a
// 404 without it is a leader that lacks the route.
const HeaderActRoute = "X-Gsd-Act-Route"

// ContentTypeBatch is the body type of the compact act route: an
// fsm.EncodeBatch of actions.
const ContentTypeBatch = "application/x-gsd-batch"

// oldActRouteRecheck is how long a leader found without the compact act
// route is sent the old request before the new one is tried again (it
// may have been upgraded).
const oldActRouteRecheck = time.Minute

// InternalActRoutePath is the path of the compact act route.
func InternalActRoutePath(world string) string { return InternalActPath(world) + ":forward" }

// ActRouteAnswer is the compact act route's answer: one result per
// action, in request order.
type ActRouteAnswer struct {
	Results []ActRouteResult `json:"results"`
}

// ActRouteResult is one action's result: its event, or its error's
// status, code and message.
type ActRouteResult struct {
	Event  *wire.Event `json:"event,omitempty"`
	Status int         `json:"status,omitempty"`
	Code   string      `json:"code,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// actRemote runs a on the leader rt names: by the compact act route
// (batched with other actions for the same leader and world unless solo),
// or by the old one for a leader without it.
func (s *Core) actRemote(ctx context.Context, rt Route, a *fsm.Action, raw json.RawMessage, token string, solo bool) (wire.Event, error) {
	if t, ok := s.oldActRoute.Load(rt.Addr); !ok || time.Since(t.(time.Time)) > oldActRouteRecheck {
		var ev wire.Event
		var err error
		if solo || !s.batchable() {
			ev, err = s.actAlone(ctx, rt, a, token)
		} else {
			ev, err = s.actBatched(ctx, rt, a)
		}
		if !errors.Is(err, errNoActRoute) {
			return ev, err
		}
		s.oldActRoute.Store(rt.Addr, time.Now())
		s.log.Info("leader has no compact act route: sending play actions by the old route", "leader", rt.Node, "addr", rt.Addr)
	}
	return s.actOldRoute(ctx, rt, a, raw, token)
}

// errNoActRoute: the leader answered 404 without HeaderActRoute.
var errNoActRoute = errors.New("gsd/api: leader has no compact act route")

// actAlone makes the compact act route's call for a alone, under ctx.
func (s *Core) actAlone(ctx context.Context, rt Route, a *fsm.Action, token string) (wire.Event, error) {
	results, err := s.postActs(ctx, rt, []*fsm.Action{a}, token)
	if err != nil {
		return wire.Event{}, err
	}
	return results[0].outcome()
}

// postActs makes one compact act route call for actions, all of one
// world, and returns one result per action. token goes along for a
// leader that does not trust this node's call (actforward's comment).
func (s *Core) postActs(ctx context.Context, rt Route, actions []*fsm.Action, token string) ([]ActRouteResult, error) {
	b := &fsm.Batch{Commands: make([]fsm.Command, len(actions))}
	for i, a := range actions {
		b.Commands[i] = fsm.Command{Kind: fsm.CmdAction, Action: a}
	}
	var out ActRouteAnswer
	err := s.sendTyped(ctx, rt, http.MethodPost, InternalActRoutePath(actions[0].World), fsm.EncodeBatch(b), ContentTypeBatch, token, func(_ int, r io.Reader) error {
		body, err := io.ReadAll(io.LimitReader(r, s.cfg.MaxBatchBodyBytes))
		if err != nil {
			return ForwardError(rt.Node, err, true)
		}
		if err := json.Unmarshal(body, &out); err != nil || len(out.Results) != len(actions) {
			return fmt.Errorf("%w: leader %s: undecodable answer (%d results for %d actions): %v", ErrInternal, rt.Node, len(out.Results), len(actions), err)
		}
		return nil
	}, func(status int, h http.Header) error {
		if status == http.StatusNotFound && h.Get(HeaderActRoute) == "" {
			return errNoActRoute
		}
		return nil
	})
	return out.Results, err
}

// outcome is r as ActOnLeader answers: the event, or the leader's error.
func (r ActRouteResult) outcome() (wire.Event, error) {
	if r.Event == nil {
		return wire.Event{}, &RemoteError{Status: r.Status, Code: r.Code, Msg: r.Error}
	}
	return *r.Event, nil
}

// actOldRoute sends the action as the public action route's body to its
// internal twin, as followers did before the compact act route.
func (s *Core) actOldRoute(ctx context.Context, rt Route, a *fsm.Action, raw json.RawMessage, token string) (wire.Event, error) {
	// The client may leave out the player; the leader needs it (auth
	// off) or checks it against the token (auth on).
	var req ActionRequest
	_ = json.Unmarshal(raw, &req) // DecodeAction has accepted raw
	req.Player = a.Player
	body, _ := json.Marshal(req)
	var ev wire.Event
	err := s.CallNode(ctx, rt, http.MethodPost, InternalActPath(a.World), body, token, &ev)
	return ev, err
}
