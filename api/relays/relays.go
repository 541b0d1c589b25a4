package relays

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator/registry"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// internalPath is the internal form of the admin routes (a follower
// sends its writes there on the leader).
const internalPath = edge.InternalPrefix + "/relays"

// API serves the registry's routes over the edge's shared core.
type API struct {
	*edge.Core
	seqs moderation.Seqs
	// Now is the clock of heartbeats and staleness (time.Now when nil).
	Now func() time.Time
	// StaleAfter is how long a live relay's heartbeat counts
	// (registry.DefaultStaleAfter when 0).
	StaleAfter time.Duration
}

// New returns the registry's routes over core.
func New(core *edge.Core) *API { return &API{Core: core} }

// Register adds the routes and their internal forms to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+wire.PathRelays, a.List)
	mux.HandleFunc("POST "+wire.PathRelays, a.Put)
	mux.HandleFunc("DELETE "+wire.PathRelays+"/{id}", a.Remove)
	mux.HandleFunc("POST "+internalPath, a.Put)
	mux.HandleFunc("DELETE "+internalPath+"/{id}", a.Remove)
	mux.HandleFunc("GET /v1/worlds/{world}/relays", a.ForWorld)
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *API) staleAfter() time.Duration {
	if a.StaleAfter > 0 {
		return a.StaleAfter
	}
	return registry.DefaultStaleAfter
}

// writer is the player id this node's registry writes are made as.
func (a *API) writer() string { return "gsd.relays." + a.Backend().Status().ID }

// relays reads every record of this node's registry world (none while it
// does not exist), by id.
func (a *API) relays(ctx context.Context) ([]registry.Relay, error) {
	idx, err := a.Backend().Entity(ctx, registry.World, registry.IndexEntity, store.Stale)
	switch {
	case errors.Is(err, fsm.ErrUnknownWorld), errors.Is(err, fsm.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var out []registry.Relay
	for _, f := range idx.Fields {
		for _, id := range f.Set {
			r, err := a.read(ctx, id.Str)
			if errors.Is(err, fsm.ErrNotFound) {
				continue // removed while the index was read
			}
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y registry.Relay) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// read reads relay id's record from this node's applied state.
func (a *API) read(ctx context.Context, id string) (registry.Relay, error) {
	v, err := a.Backend().Entity(ctx, registry.World, id, store.Stale)
	if errors.Is(err, fsm.ErrUnknownWorld) || errors.Is(err, fsm.ErrNotFound) {
		return registry.Relay{}, fmt.Errorf("%w: %s", registry.ErrNotFound, id)
	}
	if err != nil {
		return registry.Relay{}, err
	}
	return registry.Decode(v)
}

// toWire is r's answer at now.
func (a *API) toWire(r registry.Relay, now time.Time) wire.Relay {
	w := wire.Relay{ID: r.ID, URL: r.URL, Region: r.Region, Worlds: r.Worlds, Capacity: r.Capacity, Viewers: r.Viewers,
		Stale: r.Stale(now, a.staleAfter())}
	if !r.Heartbeat.IsZero() {
		w.HeartbeatMs, w.Live = r.Heartbeat.UnixMilli(), true
	}
	return w
}

// List handles GET /v1/relays: every registered relay by id, the stale
// ones said so.
func (a *API) List(w http.ResponseWriter, r *http.Request) {
	rs, err := a.relays(r.Context())
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	now := a.now()
	out := wire.RelayList{Relays: []wire.Relay{}}
	for _, rl := range rs {
		out.Relays = append(out.Relays, a.toWire(rl, now))
	}
	a.WriteJSON(w, http.StatusOK, out)
}

// ForWorld handles GET /v1/worlds/{world}/relays: the relays to watch the
// world through (serving it, neither stale nor full), least loaded first.
func (a *API) ForWorld(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	if _, err := a.Backend().World(world); err != nil {
		a.WriteError(w, err, false)
		return
	}
	rs, err := a.relays(r.Context())
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	now := a.now()
	out := wire.RelayList{Relays: []wire.Relay{}}
	for _, rl := range registry.Pick(rs, world, now, a.staleAfter()) {
		out.Relays = append(out.Relays, a.toWire(rl, now))
	}
	a.WriteJSON(w, http.StatusOK, out)
}

// Put handles POST /v1/relays: records a relay (replacing one of the same
// id) on the registry world's leader, creating the world first when
// needed. A live put takes the leader's time as the relay's heartbeat.
func (a *API) Put(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, a.Config().MaxBodyBytes)
	var q wire.Relay
	if err == nil {
		err = edge.DecodeStrict(body, &q)
	}
	rl := registry.Relay{ID: q.ID, URL: q.URL, Region: q.Region, Worlds: q.Worlds, Capacity: q.Capacity, Viewers: q.Viewers}
	if err == nil {
		err = rl.Validate()
	}
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	a.OnLeader(w, r, registry.World, edge.KindWrite, internalPath, body, func(g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		now := a.now()
		if q.Live {
			rl.Heartbeat = now
		}
		err := registry.Put(ctx, g, a.Backend(), rl, a.writer(), a.seqs.Next())
		if err == nil {
			a.WriteJSON(w, http.StatusOK, a.toWire(rl, now))
		}
		return err
	})
}

// Remove handles DELETE /v1/relays/{id} on the registry world's leader:
// 404 not_found when no such relay is registered there.
func (a *API) Remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := registry.RemoveAction(id, a.writer(), 1); err != nil {
		a.WriteError(w, err, true)
		return
	}
	a.OnLeader(w, r, registry.World, edge.KindWrite, internalPath+"/"+id, nil, func(g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		if _, err := a.read(ctx, id); err != nil {
			return err
		}
		err := registry.Remove(ctx, g, a.Backend(), id, a.writer(), a.seqs.Next())
		if err == nil {
			w.WriteHeader(http.StatusNoContent)
		}
		return err
	})
}
