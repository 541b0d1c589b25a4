package play

import (
	"context"
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// Play streams cut to each player's view (issue 13). A world whose rules
// restrict no field has one hub on this node, as before, and so does
// every caller who sees everything (a game server's or an admin's token).
// In a world that restricts fields, each other connection joins the hub
// of its view (spectator.View: the player, its team, the classes it sees;
// viewHubs): the hub takes the world's batches from the same fan, cuts
// each event to its view (the world's prepared events, shared by the
// hubs of every view: edge.Visibility) and prepares what is left, so
// connections that share a view share frames, encoded once, and a
// connection never gets a byte of what its view may not see. An event the
// view sees nothing of moves the connection's position without a frame.
//
// A rules update is the world's event once every voter reads log 12
// (spectator.RulesUpdate): a hub offers the events up to it, it included,
// under its rules, then a view's hub ends its connections (going away:
// resume), the world's hub when the new rules restrict a field or change
// its interest grid (rulesCut), so each connection resumes in the hub its
// view now needs and no event after the update is cut under the old
// rules. A connection of a view's hub that reads alone (detached,
// pusher.go) ends there too: its prepared events refuse what follows;
// one of the world's hub is cut there by soloCut, against the rules it
// joined under. Updates without the event (a cluster still at log 11) are found
// by polling: each hub checks its world's rules version before each
// batch (edge.RulesTTL old at most) and ends the same way.
//
// A world's rules may set its interest grid (rules key interest, with
// the team field of teams.from "field"); a world that sets none takes the
// node's --play-interest-* flags, as before.

// hubKey names the hub of one view of a world under one rules version.
type hubKey struct {
	world   string
	version edge.RulesRef
	view    spectator.View
}

// playView is the view a view's hub cuts its events to.
type playView struct {
	access  *spectator.Access
	version edge.RulesRef
	view    spectator.View
	key     hubKey
}

// viewOf returns c's view in its world: nil when c takes the world's hub
// (its token's role sees everything, or the world restricts nothing);
// Players see as viewers of the public class.
// rules is the world's rules the answer was decided under.
func (s *Service) viewOf(c *playConn) (*playView, edge.RulesRef, error) {
	a, info, err := s.vis.Access(c.world)
	if err != nil {
		return nil, edge.RulesRef{}, err
	}
	rules := edge.RulesOf(info)
	if c.role == fsm.RoleAdmin || c.role == fsm.RoleServer || !a.Restricted() {
		return nil, rules, nil
	}
	view, _, err := a.Resolve(spectator.Viewer{Player: c.player})
	if err != nil {
		return nil, rules, err
	}
	return &playView{access: a, version: rules, view: view,
		key: hubKey{world: c.world, version: rules, view: view}}, rules, nil
}

// soloCut returns how many of evs c, reading alone (pusher.go), may be
// offered: all of them, or those up to the event of a rules update after
// the rules c joined its hub under, it included; end is then
// errRulesChanged (c resumes in the hub its view now needs). It matters
// for a player on the world's hub, whose events are not cut: a view's
// prepared events refuse what follows an update themselves, and admins
// and servers see every field. An update to rules that still restrict
// nothing goes on (as rulesCut). Only c's pusher calls it.
func (c *playConn) soloCut(h *hub, evs []*fsm.Event) (n int, end error) {
	if h.pv != nil || c.role == fsm.RoleAdmin || c.role == fsm.RoleServer {
		return len(evs), nil
	}
	for i, ev := range evs {
		version, ok := spectator.RulesUpdate(ev)
		if !ok || version <= c.soloRules.Version {
			continue
		}
		if rules, _, ok := c.s.unrestrictedAt(c.world, version, c.soloRules.Incarnation); ok {
			c.soloRules = rules
			continue
		}
		return i + 1, errRulesChanged
	}
	return len(evs), nil
}

// prepare prepares evs for h's connections: each cut to h's view first
// (in h's prepared events, or own's once the reader is behind them).
func (h *hub) prepare(evs []*fsm.Event, own **spectator.Events, coalesce bool) ([]*hubEvent, error) {
	if h.pv == nil {
		return h.s.prepare(evs, coalesce)
	}
	cut := make([]*fsm.Event, 0, len(evs))
	kept := make([]bool, len(evs))
	for i, ev := range evs {
		out, err := h.s.vis.Cut(h.events, own, h.pv.access, h.pv.view, ev)
		if errors.Is(err, spectator.ErrRulesChanged) {
			return nil, errRulesChanged // past a rules update (a detached connection's read)
		}
		if err != nil {
			return nil, err
		}
		if out != nil {
			cut = append(cut, out)
			kept[i] = true
		}
	}
	hevs, err := h.s.prepare(cut, coalesce)
	if err != nil {
		return nil, err
	}
	out := make([]*hubEvent, len(evs))
	for i, ev := range evs {
		if kept[i] {
			out[i], hevs = hevs[0], hevs[1:]
			continue
		}
		// Nothing for the view: a position without a frame (no
		// frame, no delta), carrying nothing of the event but its seq.
		out[i] = &hubEvent{ev: &fsm.Event{World: ev.World, Seq: ev.Seq, Index: ev.Index, Time: ev.Time}, wire: h.s.Wire()}
	}
	return out, nil
}

// checkRules reports the rules change that ends h's connections: any
// change for a view's hub, one to rules that restrict a field for the
// world's hub (which otherwise goes on under the new version).
func (h *hub) checkRules() error {
	now, ok := h.s.vis.RulesVersion(h.world, h.rules)
	if !ok {
		return fmt.Errorf("%w: world %s", fsm.ErrUnknownWorld, h.world)
	}
	if now == h.rules {
		return nil
	}
	if h.pv == nil {
		a, info, err := h.s.vis.Access(h.world)
		if err != nil {
			return err
		}
		if !a.Restricted() && h.s.interestOf(info.Rules) == h.interest {
			h.rules = edge.RulesOf(info)
			return nil
		}
	}
	return errRulesChanged
}

// rulesCut returns how many of evs h offers under its rules: all of
// them, or those up to the event of a rules update after h's rules, it
// included; end is then what ends h after them (errRulesChanged), or nil
// when h goes on under the new rules (the world's hub, whose rules at the
// update's version restrict no field and keep its interest grid, as
// checkRules). Only the hub's run goroutine calls it: it moves h.rules.
func (h *hub) rulesCut(evs []*fsm.Event) (n int, end error) {
	for i, ev := range evs {
		version, ok := spectator.RulesUpdate(ev)
		if !ok || version <= h.rules.Version {
			continue
		}
		if h.pv == nil {
			if rules, interest, ok := h.s.unrestrictedAt(h.world, version, h.rules.Incarnation); ok && interest == h.interest {
				h.rules = rules
				continue
			}
		}
		return i + 1, errRulesChanged
	}
	return len(evs), nil
}

// unrestrictedAt returns world's rules and the interest config they give
// when they are rules version version of incarnation and restrict no
// field (a reader of the world's hub goes on under them); false
// otherwise, also when the rules have moved past version already.
func (s *Service) unrestrictedAt(world string, version, incarnation uint64) (edge.RulesRef, InterestConfig, bool) {
	a, info, err := s.vis.Access(world)
	if err != nil || a.Restricted() || info.RulesVersion != version || info.Incarnation != incarnation {
		return edge.RulesRef{}, InterestConfig{}, false
	}
	return edge.RulesOf(info), s.interestOf(info.Rules), true
}

// interestOf returns the interest config of a world's connections: its
// rules' grid (rules key interest; the team from teams.from "field"), or,
// when its rules set none, the node's (--play-interest-*).
func (s *Service) interestOf(r fsm.Rules) InterestConfig {
	in := r.Schema.Interest
	if in == (fsm.InterestRule{}) {
		return s.cfg.Interest
	}
	ic := InterestConfig{Cell: in.Cell, Radius: in.Radius, X: in.X, Y: in.Y}
	if r.Schema.Teams.From == "field" {
		ic.Team = r.Schema.Teams.Key
	}
	return ic
}

// errRulesChanged ends the connections of a hub whose world's rules
// changed: they resume, in the hub their view needs now.
var errRulesChanged = fmt.Errorf("%w: %w: resume", edge.ErrUnavailable, spectator.ErrRulesChanged)

// answer returns ev, the committed event of c's action, as c's player may
// see it (spectator.Access.Answer): the answer to an action carries no
// more than the play stream would, so a failed expect cannot read a
// hidden field's current value. A connection that sees everything, or a
// world that restricts nothing, gets ev whole. The leader of another node
// has cut an event it answered already; cutting again changes nothing.
func (s *Service) answer(c *playConn, ev wire.Event) (wire.Event, error) {
	if c.role == fsm.RoleAdmin || c.role == fsm.RoleServer || len(ev.Changes) == 0 {
		return ev, nil
	}
	a, _, err := s.vis.Access(c.world)
	if err != nil || !a.Restricted() {
		return ev, err
	}
	view, _, err := a.Resolve(spectator.Viewer{Player: c.player})
	if err != nil {
		return ev, err
	}
	fe := &fsm.Event{World: ev.World, Seq: ev.Seq, Player: ev.Player, Changes: make([]fsm.Change, len(ev.Changes))}
	for i, ch := range ev.Changes {
		fe.Changes[i] = fsm.Change{Entity: ch.Entity, Field: ch.Field, Version: ch.Version}
	}
	lookup := func(id string) (fsm.EntityView, bool) {
		e, err := s.b.Entity(context.Background(), c.world, id, store.Stale)
		return e, err == nil
	}
	cut := a.Answer(view, fe, lookup, s.vis.TeamOf(c.world, a))
	out := ev
	out.Changes, out.Versions = nil, nil
	kept := cut.Changes
	for _, ch := range ev.Changes {
		// Answer keeps changes in order, dropping some and rewriting an
		// entity-level change's version.
		if len(kept) == 0 || kept[0].Entity != ch.Entity || kept[0].Field != ch.Field {
			continue
		}
		ch.Version, kept = kept[0].Version, kept[1:]
		out.Changes = append(out.Changes, ch)
		if ch.Field != "" {
			if out.Versions == nil {
				out.Versions = make(map[string]map[string]uint64)
			}
			if out.Versions[ch.Entity] == nil {
				out.Versions[ch.Entity] = make(map[string]uint64)
			}
			out.Versions[ch.Entity][ch.Field] = ch.Version
		}
	}
	return out, nil
}
