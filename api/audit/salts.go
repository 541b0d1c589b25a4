package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// The salt routes of a world whose audit leaves are salted (leaf version
// 2, docs/ANTICHEAT.md): a verifier's salt table (moderators and admins)
// and a player's erasure (admins). Both run on the world's leader, as
// other writes and linearizable reads do; a node that does not lead calls
// it through the internal route of the same path.

// saltGroup is what the routes need of the group that leads the world
// (*store.Store implements it).
type saltGroup interface {
	SaltTable(world string) (fsm.SaltTable, error)
	EraseSalt(ctx context.Context, world, player string) error
}

// registerSalts adds the salt routes, public and internal, to mux.
func (a *API) registerSalts(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/worlds/{world}/audit/salts", a.Salts)
	mux.HandleFunc("DELETE /v1/worlds/{world}/audit/salts/{player}", a.EraseSalt)
	mux.HandleFunc("GET "+edge.InternalPrefix+"/worlds/{world}/audit/salts", a.internal(a.Salts))
	mux.HandleFunc("DELETE "+edge.InternalPrefix+"/worlds/{world}/audit/salts/{player}", a.internal(a.EraseSalt))
}

func (a *API) internal(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.ForwardedOnly(w, r) {
			h(w, r)
		}
	}
}

// Salts answers the salt table of a salted world's current incarnation
// (wire.AuditSalts): what gsdctl audit verify needs to recompute its
// leaves. Erased players are not in it; the digests of erased salts the
// world kept are, without their players' ids. 422 not_supported for a world
// whose leaves are not salted.
//
// With ?signed=1 it answers wire.AuditSaltsSigned: the table's JSON bytes
// and the leader's salts note over them (audit.SaltsNote), signed with the
// node's audit key, the one that signs its checkpoints; without a key the
// note is empty (the table is served unsigned, as before).
func (a *API) Salts(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	signed := r.URL.Query().Get("signed") != ""
	path := edge.InternalWorldPath(world, "/audit/salts")
	if signed {
		path += "?signed=1"
	}
	a.OnLeader(w, r, world, edge.KindRead, path, nil, func(g edge.Group) error {
		sg, err := salted(g)
		if err != nil {
			return err
		}
		// The log's size is read before the table: the table then holds
		// the salts of the players of those events (the note says so).
		var l *audit.Log
		var size int64
		if signed {
			if l, err = a.logs.Log(world); err != nil {
				return err
			}
			size = l.Size()
		}
		t, err := sg.SaltTable(world)
		if err != nil {
			return err
		}
		out := wire.AuditSalts{World: world, Incarnation: t.Incarnation, Salts: make([]wire.AuditSalt, len(t.Salts))}
		for i, s := range t.Salts {
			out.Salts[i] = wire.AuditSalt{Player: s.Player, Salt: s.Key[:], Since: s.Since}
		}
		for _, e := range t.Erased {
			out.Erased = append(out.Erased, wire.AuditErasedSalt{Digest: e.Digest[:], Since: e.Since, Until: e.Until})
		}
		if !signed {
			a.WriteJSON(w, http.StatusOK, out)
			return nil
		}
		return a.writeSignedSalts(w, l, size, &out)
	})
}

// writeSignedSalts answers out as wire.AuditSaltsSigned, signed when the
// node has an audit key; l is the world's log and size its size before
// out was read.
func (a *API) writeSignedSalts(w http.ResponseWriter, l *audit.Log, size int64, out *wire.AuditSalts) error {
	if l.Incarnation() != out.Incarnation { // created again meanwhile, or the auditor has not caught up
		return fmt.Errorf("%w: the salts of %s incarnation %d were read beside the audit log of incarnation %d: ask again",
			edge.ErrUnavailable, out.World, out.Incarnation, l.Incarnation())
	}
	body, _ := json.Marshal(out) // strings, numbers and bytes: cannot fail
	msg, err := a.logs.SignSalts(audit.NewSaltsNote(out.World, out.Incarnation, size, body))
	if err != nil && !errors.Is(err, auditor.ErrNoKey) {
		return err
	}
	a.WriteJSON(w, http.StatusOK, wire.AuditSaltsSigned{Table: body, Note: string(msg)})
	return nil
}

// EraseSalt deletes a player's salt (fsm.CmdEraseSaltKeep, or CmdEraseSalt
// while a voter reads log 13: store.Store.EraseSalt): from then on the
// leaves that committed to the player's salted id no longer link to it.
// 404 not_found when the player has no salt.
func (a *API) EraseSalt(w http.ResponseWriter, r *http.Request) {
	world, player := r.PathValue("world"), r.PathValue("player")
	path := edge.InternalWorldPath(world, "/audit/salts/"+url.PathEscape(player))
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	a.OnLeader(w, r, world, edge.KindWrite, path, nil, func(g edge.Group) error {
		sg, err := salted(g)
		if err != nil {
			return err
		}
		if err := sg.EraseSalt(ctx, world, player); err != nil {
			return err
		}
		a.WriteJSON(w, http.StatusOK, wire.SaltErased{World: world, Player: player})
		return nil
	})
}

func salted(g edge.Group) (saltGroup, error) {
	sg, ok := g.(saltGroup)
	if !ok {
		return nil, fmt.Errorf("%w: this node's groups keep no audit salts", fsm.ErrNotSupported)
	}
	return sg, nil
}
