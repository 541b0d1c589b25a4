package moderation

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// The routes' paths.
const (
	PathFlags         = wire.PathModerationFlags
	internalFlagsPath = edge.InternalPrefix + "/moderation/flags"
)

// API serves the moderation routes over the edge's shared core.
type API struct {
	*edge.Core
	metrics *moderation.Metrics
	seqs    moderation.Seqs
	// Now is the clock of reviews' times (time.Now when nil).
	Now func() time.Time
}

// New returns the moderation routes over core, their review counter
// registered with reg.
func New(core *edge.Core, reg prometheus.Registerer) (*API, error) {
	m, err := moderation.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("moderation metrics: %w", err)
	}
	return &API{Core: core, metrics: m}, nil
}

// Register adds the moderation routes and their internal forms to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathFlags, a.List)
	mux.HandleFunc("GET "+PathFlags+"/{id}", a.Get)
	mux.HandleFunc("POST "+PathFlags, a.Record)
	mux.HandleFunc("POST "+PathFlags+"/{id}/{op}", a.Review)
	mux.HandleFunc("POST "+internalFlagsPath, a.Record)
	mux.HandleFunc("POST "+internalFlagsPath+"/{id}/{op}", a.Review)
}

// writer is the player id this node's records and reviews are written as
// (their idempotency key's player).
func (a *API) writer() string { return "gsd.moderation." + a.Backend().Status().ID }

// List handles GET /v1/moderation/flags: the records of this node's
// moderation world (none while it does not exist), oldest first (by the
// seq that recorded them, then id), filtered by the query's world,
// detector, player and state (each optional, exact), a page of limit
// (paging.go) after the query's cursor, with the next page's cursor.
// (Each page reads every record: paging bounds the answer, not the reads.)
func (a *API) List(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && !slices.Contains([]string{moderation.StateOpen, moderation.StateConfirmed, moderation.StateDismissed, moderation.StateAppealed}, state) {
		a.WriteError(w, fmt.Errorf("%w: state %q: want open, confirmed, dismissed or appealed", fsm.ErrMalformed, state), false)
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	var after cursor
	if err == nil {
		after, err = parseCursor(q.Get("cursor"))
	}
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	out := []wire.Flag{}
	ctx := r.Context()
	idx, err := a.Backend().Entity(ctx, moderation.World, moderation.IndexEntity, store.Stale)
	switch {
	case errors.Is(err, fsm.ErrUnknownWorld), errors.Is(err, fsm.ErrNotFound):
		a.WriteJSON(w, http.StatusOK, wire.FlagList{Flags: out})
		return
	case err != nil:
		a.WriteError(w, err, false)
		return
	}
	for _, f := range idx.Fields {
		for _, id := range f.Set {
			rec, err := a.read(ctx, id.Str)
			if errors.Is(err, fsm.ErrNotFound) {
				continue // an admin deleted the record (the index keeps its id)
			}
			if err != nil {
				a.WriteError(w, err, false)
				return
			}
			if match(rec, q.Get("world"), q.Get("detector"), q.Get("player"), state) {
				out = append(out, rec.Wire())
			}
		}
	}
	slices.SortFunc(out, func(x, y wire.Flag) int { return cmp.Or(cmp.Compare(x.Raised, y.Raised), cmp.Compare(x.ID, y.ID)) })
	flags, next := page(out, after, limit)
	a.WriteJSON(w, http.StatusOK, wire.FlagList{Flags: flags, NextCursor: next})
}

func match(r moderation.Record, world, detector, player, state string) bool {
	return (world == "" || r.World == world) && (detector == "" || r.Detector == detector) &&
		(player == "" || slices.Contains(r.Players, player)) && (state == "" || r.State == state)
}

// read reads record id from this node's applied state.
func (a *API) read(ctx context.Context, id string) (moderation.Record, error) {
	v, err := a.Backend().Entity(ctx, moderation.World, id, store.Stale)
	if errors.Is(err, fsm.ErrUnknownWorld) || errors.Is(err, fsm.ErrNotFound) {
		return moderation.Record{}, fmt.Errorf("%w: %s", moderation.ErrNotFound, id)
	}
	if err != nil {
		return moderation.Record{}, err
	}
	return moderation.Decode(v)
}

// Get handles GET /v1/moderation/flags/{id}: one record, its evidence
// refs and its history.
func (a *API) Get(w http.ResponseWriter, r *http.Request) {
	rec, err := a.read(r.Context(), r.PathValue("id"))
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	a.WriteJSON(w, http.StatusOK, rec.Wire())
}

// Record handles POST /v1/moderation/flags (an admin's, or another node's
// detectors' through the internal route): records a flag on the
// moderation world's leader, creating the world first when needed.
func (a *API) Record(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, a.Config().MaxBodyBytes)
	var q wire.FlagRaise
	if err == nil {
		err = edge.DecodeStrict(body, &q)
	}
	rec := moderation.FromWire(q)
	if err == nil {
		err = rec.Validate()
	}
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	a.OnLeader(w, r, moderation.World, edge.KindWrite, internalFlagsPath, body, func(g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		created, err := moderation.Raise(ctx, g, a.Backend(), rec, a.writer(), a.seqs.Next())
		if err == nil {
			a.WriteJSON(w, http.StatusOK, wire.FlagRaised{ID: rec.ID, Created: created})
		}
		return err
	})
}

// Raise records rec where the moderation world's leader is (the
// detectors' Recorder's moderation.Writer). The leader's refusal of the
// record itself (400, 422) wraps moderation.ErrInvalid: retrying cannot
// help. Other answers (an older leader without the route, a credential
// missing) are retried by the recorder. A record this node already holds
// is not written again (created false): detectors that rebuilt their
// counts after a restart or a leadership change raise their old flags
// again, and each would cost a write that commits a conflict.
func (a *API) Raise(ctx context.Context, rec moderation.Record) (bool, error) {
	if _, err := a.read(ctx, rec.ID); err == nil {
		return false, nil
	}
	var created bool
	err := a.RouteCall(moderation.World, edge.KindWrite, edge.NoHop, func(g edge.Group) error {
		var err error
		created, err = moderation.Raise(ctx, g, a.Backend(), rec, a.writer(), a.seqs.Next())
		return err
	}, func(rt edge.Route) error {
		body, _ := json.Marshal(wire.FlagRaise{Detector: rec.Detector, Players: rec.Players, Score: rec.Score, Evidence: rec.Evidence,
			World: rec.World, Incarnation: rec.Incarnation, RaisedBy: rec.RaisedBy}) // plain fields: never fails
		var out wire.FlagRaised
		err := a.CallNode(ctx, rt, http.MethodPost, internalFlagsPath, body, "", &out)
		if re, ok := errors.AsType[*edge.RemoteError](err); ok && (re.Status == http.StatusBadRequest || re.Status == http.StatusUnprocessableEntity) {
			return fmt.Errorf("%w: %w", moderation.ErrInvalid, err)
		}
		created = out.Created
		return err
	})
	return created, err
}

// World returns this node's view of a world (moderation.Writer).
func (a *API) World(id string) (fsm.WorldInfo, error) { return a.Backend().World(id) }

// Review handles POST /v1/moderation/flags/{id}/{op}, op confirm, dismiss
// or appeal: on the moderation world's leader, it reads the record and
// commits the transition (anticheat/moderation's Next: an illegal one is
// 409 illegal_transition, one that lost to a concurrent review 409
// review_conflict). Nothing is banned unless the flagged world's rules
// say so (policy.go).
func (a *API) Review(w http.ResponseWriter, r *http.Request) {
	var q wire.FlagReviewRequest
	if !a.ReadJSON(w, r, a.Config().MaxBodyBytes, &q) {
		return
	}
	id, op := r.PathValue("id"), r.PathValue("op")
	if a.Auth() != nil && edge.Bearer(r) != "" {
		who, err := a.Identify(r)
		if err == nil && q.By != "" && q.By != who.Player {
			err = fmt.Errorf("%w: the token is for %q, the review names %q", edge.ErrForbidden, who.Player, q.By)
		}
		if err != nil {
			a.WriteError(w, err, true)
			return
		}
		q.By = who.Player
	}
	body, _ := json.Marshal(q) // plain fields: never fails
	a.OnLeader(w, r, moderation.World, edge.KindWrite, internalFlagsPath+"/"+url.PathEscape(id)+"/"+url.PathEscape(op), body, func(g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		v, err := g.Entity(ctx, moderation.World, id, store.Stale)
		if errors.Is(err, fsm.ErrUnknownWorld) || errors.Is(err, fsm.ErrNotFound) {
			err = fmt.Errorf("%w: %s", moderation.ErrNotFound, id)
		}
		var rec moderation.Record
		if err == nil {
			rec, err = moderation.Decode(v)
		}
		if err != nil {
			return err
		}
		now := time.Now
		if a.Now != nil {
			now = a.Now
		}
		rv, err := moderation.ApplyReview(ctx, g, a.Backend(), rec, op, q.By, q.Reason, now(), a.writer(), a.seqs.Next())
		if err != nil {
			return err
		}
		a.metrics.Review(rv)
		a.Log().Info("anticheat flag reviewed", "id", id, "op", op, "from", rv.From, "to", rv.To, "by", rv.By)
		out := a.policy(ctx, rec, rv)
		rec.State, rec.History = rv.To, append(rec.History, rv)
		out.Flag, out.Review = rec.Wire(), rv
		a.WriteJSON(w, http.StatusOK, out)
		return nil
	})
}
