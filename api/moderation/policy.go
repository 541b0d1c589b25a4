package moderation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// policy carries out what the flagged world's rules say a committed
// review does (moderation.Policy): ban the flag's players from that world
// on a confirmation, lift the bans when an appeal is granted. Each ban
// runs on that world's leader, here or through its internal route. A
// failure does not undo the review: the answer names it, and a moderator
// bans (or unbans) by hand.
func (a *API) policy(ctx context.Context, rec moderation.Record, rv moderation.Review) wire.FlagReviewed {
	var out wire.FlagReviewed
	wi, err := a.Backend().World(rec.World)
	if err != nil {
		return out
	}
	ban, unban := moderation.Policy(rec, rv, wi)
	if !ban && !unban {
		return out
	}
	var errs []error
	for _, p := range rec.Players {
		if err := a.ban(ctx, rec.World, p, moderation.BanReason(rec, rv), ban); err != nil {
			errs = append(errs, fmt.Errorf("player %s: %w", p, err))
			continue
		}
		if ban {
			out.Banned = append(out.Banned, p)
		} else {
			out.Unbanned = append(out.Unbanned, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		out.PolicyError = err.Error()
		a.Log().Warn("anticheat flag policy failed: ban or unban by hand", "id", rec.ID, "world", rec.World, "err", err)
	}
	if len(out.Banned)+len(out.Unbanned) > 0 {
		a.Log().Info("anticheat flag policy applied", "id", rec.ID, "world", rec.World, "banned", out.Banned, "unbanned", out.Unbanned)
	}
	return out
}

// ban bans (or, with ban false, unbans) player from world on its leader.
func (a *API) ban(ctx context.Context, world, player, reason string, ban bool) error {
	return a.RouteCall(world, edge.KindWrite, edge.NoHop, func(g edge.Group) error {
		kind, c := fsm.CmdSessionUnban, &fsm.SessionCmd{World: world, Player: player}
		if ban {
			kind, c.Reason = fsm.CmdSessionBan, reason
		}
		_, err := g.Session(ctx, kind, c)
		return err
	}, func(rt edge.Route) error {
		var out json.RawMessage
		if !ban {
			return a.CallNode(ctx, rt, http.MethodDelete, edge.InternalWorldPath(world, "/bans/"+url.PathEscape(player)), nil, "", &out)
		}
		body, _ := json.Marshal(wire.Ban{Player: player, Reason: reason}) // plain fields: never fails
		return a.CallNode(ctx, rt, http.MethodPost, edge.InternalWorldPath(world, "/bans"), body, "", &out)
	})
}
