package public

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
)

// createWorldRequest is the body of POST /v1/worlds.
type createWorldRequest struct {
	ID    string          `json:"id"`
	Rules json.RawMessage `json:"rules"`
	// AuditLeaf 2 salts the world's audit leaves per player
	// (docs/ANTICHEAT.md); 0 or 1: version 1.
	AuditLeaf int `json:"audit_leaf,omitempty"`
}

// saltedCreator creates worlds with salted audit leaves (*store.Store).
type saltedCreator interface {
	CreateSaltedWorld(ctx context.Context, id string, rules fsm.Rules) error
}

// CreateWorld handles POST /v1/worlds.
func (p *API) CreateWorld(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, p.Config().MaxBodyBytes)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	var req createWorldRequest
	if err := edge.DecodeStrict(body, &req); err != nil {
		p.WriteError(w, err, true)
		return
	}
	if err := edge.CheckName("world id", req.ID); err != nil {
		p.WriteError(w, err, true)
		return
	}
	rules, err := edge.DecodeRules(req.Rules)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	if req.AuditLeaf < 0 || req.AuditLeaf > 2 {
		p.WriteError(w, fmt.Errorf("%w: audit_leaf must be 1 or 2, got %d", fsm.ErrMalformed, req.AuditLeaf), true)
		return
	}
	ctx, cancel := p.RequestContext(r)
	defer cancel()
	if err := p.placeNew(ctx, r, req.ID); err != nil {
		p.WriteError(w, err, true)
		return
	}
	p.OnLeader(w, r, req.ID, edge.KindWrite, edge.InternalWorldsPath, body, func(g edge.Group) error {
		create := g.CreateWorld
		if req.AuditLeaf == 2 {
			sc, ok := g.(saltedCreator)
			if !ok {
				return fmt.Errorf("%w: this node's groups cannot salt audit leaves", fsm.ErrNotSupported)
			}
			create = sc.CreateSaltedWorld
		}
		if err := create(ctx, req.ID, rules); err != nil {
			return err
		}
		p.WriteJSON(w, http.StatusCreated, map[string]string{"id": req.ID})
		return nil
	})
}

// ListWorlds handles GET /v1/worlds: this node's (possibly stale) view,
// sorted by id, filtered and paged by the query (worldFilter).
func (p *API) ListWorlds(w http.ResponseWriter, r *http.Request) {
	f, err := parseWorldFilter(r.URL.Query())
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	infos := p.Backend().Worlds()
	slices.SortFunc(infos, func(a, b fsm.WorldInfo) int { return strings.Compare(a.ID, b.ID) })
	out := wire.Worlds{Worlds: []wire.World{}}
	all := p.seesAll(r)
	for _, wi := range infos {
		if wi.ID <= f.cursor || !f.match(wi) {
			continue
		}
		if f.limit > 0 && len(out.Worlds) == f.limit {
			out.Next = out.Worlds[len(out.Worlds)-1].ID
			break
		}
		out.Worlds = append(out.Worlds, p.worldWire(wi, all))
	}
	p.WriteJSON(w, http.StatusOK, out)
}

// World handles GET /v1/worlds/{world}: one world as this node has it.
func (p *API) World(w http.ResponseWriter, r *http.Request) {
	wi, err := p.Backend().World(r.PathValue("world"))
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	p.WriteJSON(w, http.StatusOK, p.worldWire(wi, p.seesAll(r)))
}

// worldWire is wi's summary for a caller who sees everything (all) or
// not: the state hash only when it may have it (edge.Core.GuardHashes).
func (p *API) worldWire(wi fsm.WorldInfo, all bool) wire.World {
	w := wire.World{ID: wi.ID, Origin: wi.Origin, Seq: wi.Seq, Index: wi.Index, Entities: wi.Entities,
		Players: wi.Players, Rules: wi.Rules.Wire(), RulesVersion: wi.RulesVersion,
		Incarnation: wi.Incarnation, Sessions: wi.Sessions}
	if wi.Salted {
		w.AuditLeaf = 2
	}
	if all {
		w.Hash = wire.Hash(wire.HashString(wi.Hash))
	} else if a, err := spectator.NewAccess(wi.Rules); err == nil && !a.Restricted() {
		// wi's own rules, as GuardHashes reads them: Visibility.Access
		// would find them by reading every world again.
		w.Hash = wire.Hash(wire.HashString(wi.Hash))
	}
	return w
}

// seesAll reports whether r's caller sees every field (edge.Sight.All); a
// caller the edge cannot place sees only what restricts nothing.
func (p *API) seesAll(r *http.Request) bool {
	g, err := p.Sight(r)
	return err == nil && g.All
}

// MaxWorldsPage bounds a listing's limit.
const MaxWorldsPage = 1000

// worldFilter is the world listing's query, what a matchmaker asks:
//
//	mode=M             the rules' mode is M
//	label=K:V          the rules' label K is V (repeat for all of several)
//	has_capacity=B     true: room for one more session (no capacity, or
//	                   fewer sessions); false: full
//	min_players=N      at least N sessions
//	max_players=N      at most N sessions
//	limit=N            at most N worlds (1..MaxWorldsPage; default all),
//	                   and the answer's next is the cursor of the rest
//	cursor=ID          worlds after ID (a previous answer's next)
type worldFilter struct {
	mode        string
	labels      map[string]string
	hasCapacity *bool
	min, max    int // -1: no bound
	limit       int // 0: all
	cursor      string
}

func parseWorldFilter(q url.Values) (worldFilter, error) {
	f := worldFilter{mode: q.Get("mode"), cursor: q.Get("cursor"), min: -1, max: -1}
	for _, l := range q["label"] {
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" {
			return f, fmt.Errorf("%w: label must be key:value, got %q", fsm.ErrMalformed, l)
		}
		if f.labels == nil {
			f.labels = make(map[string]string)
		}
		f.labels[k] = v
	}
	if v := q.Get("has_capacity"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, fmt.Errorf("%w: has_capacity must be true or false, got %q", fsm.ErrMalformed, v)
		}
		f.hasCapacity = &b
	}
	for _, n := range []struct {
		name string
		dst  *int
		top  int
	}{{"min_players", &f.min, math.MaxInt32}, {"max_players", &f.max, math.MaxInt32}, {"limit", &f.limit, MaxWorldsPage}} {
		v := q.Get(n.name)
		if v == "" {
			continue
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 || i > n.top || n.name == "limit" && i == 0 {
			return f, fmt.Errorf("%w: %s must be an integer in 0..%d (limit 1..%d), got %q", fsm.ErrMalformed, n.name, n.top, MaxWorldsPage, v)
		}
		*n.dst = i
	}
	return f, nil
}

// match reports whether wi passes every condition of f.
func (f worldFilter) match(wi fsm.WorldInfo) bool {
	s := wi.Rules.Schema
	if f.mode != "" && s.Mode != f.mode {
		return false
	}
	for k, v := range f.labels {
		if got, ok := s.Labels[k]; !ok || got != v {
			return false
		}
	}
	if f.hasCapacity != nil && (s.Capacity == 0 || wi.Sessions < s.Capacity) != *f.hasCapacity {
		return false
	}
	return (f.min < 0 || wi.Sessions >= f.min) && (f.max < 0 || wi.Sessions <= f.max)
}

// Hash handles GET /v1/worlds/{world}/hash[?seq=N]: this node's state hash
// now or after event N, for comparing replicas at equal seqs. In a world
// whose rules restrict fields, only for callers who see everything
// (edge.Core.GuardHashes).
func (p *API) Hash(w http.ResponseWriter, r *http.Request) {
	seq, err := edge.ParseSeq(r, "seq")
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	world := r.PathValue("world")
	if err := p.GuardHashes(r, world, "its state hashes"); err != nil {
		p.WriteError(w, err, false)
		return
	}
	hp, err := p.Backend().Hash(world, seq)
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	p.WriteJSON(w, http.StatusOK, wire.HashPoint{World: world, Seq: hp.Seq, Index: hp.Index, Hash: wire.Hash(wire.HashString(hp.Hash))})
}
