package play

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// A play connection whose world moves to another shard (issue 14) stays
// open when this node runs a replica of the new home: its events go on
// from the new home's feed at the fence's seq + 1 (the backend's
// subscriptions follow the move: shard.Backend.Subscribe), its session,
// which moved with the world, is watched there, and its actions go to the
// new home once this node routes the world there. A node that runs no
// replica of the new home ends the connection with 4421 world_moved, as
// before (watch).

// moveFollower is what a backend over several groups tells the play
// service (shard.Backend): whether this node runs a replica of group g.
type moveFollower interface {
	RunsGroup(g uint64) bool
}

// follows reports whether this node follows a world's move f: it runs a
// replica of the new home, where its subscriptions go on.
func (s *Service) follows(f fsm.Fence) bool {
	mf, ok := s.b.(moveFollower)
	return ok && mf.RunsGroup(f.Shard)
}

// fenceOf returns the fence of world's copy on this node, when the copy
// it reads (the map's group's, else any group's: edge.HeldWorlds) is
// fenced by a move.
func (s *Service) fenceOf(world string) (fsm.Fence, bool) {
	var w fsm.WorldInfo
	if h, ok := s.b.(edge.HeldWorlds); ok {
		w, _ = h.HeldWorld(world)
	} else {
		w, _ = s.b.World(world)
	}
	if w.Moved == nil {
		return fsm.Fence{}, false
	}
	return *w.Moved, true
}

// routesTo reports whether this node routes world's writes to group g.
func (s *Service) routesTo(world string, g uint64) bool {
	return s.routeOf(world) == strconv.FormatUint(g, 10)
}

// routeOf returns the group this node routes world's writes to ("": none).
func (s *Service) routeOf(world string) string {
	rt, err := s.Router().Route(world, edge.KindWrite)
	if err != nil {
		return ""
	}
	return rt.GroupID
}

// movedOn reports whether this node now routes world's writes to a group
// other than refused, one it runs: a world_moved refusal that names no
// fence (a remote leader's), read when this node's copy is live already
// (the new home's replica here imported it, the map routes there), has
// its new home there.
func (s *Service) movedOn(world, refused string) bool {
	now := s.routeOf(world)
	g, err := strconv.ParseUint(now, 10, 64)
	return now != refused && err == nil && s.follows(fsm.Fence{World: world, Shard: g})
}

// worldMoved reports whether err is a world_moved refusal, from this
// node's group or from the leader it forwarded to; fence is the fence
// when the refusal names it.
func worldMoved(err error) (fence fsm.Fence, named, moved bool) {
	if me, ok := errors.AsType[*fsm.MovedError](err); ok {
		return me.Fence, true, true
	}
	if re, ok := errors.AsType[*edge.RemoteError](err); ok && re.Code == fsm.CodeWorldMoved {
		return fsm.Fence{}, false, true
	}
	return fsm.Fence{}, false, errors.Is(err, fsm.ErrWorldMoved)
}

// actOnLeader runs c's action a on its world's leader. An action refused
// world_moved while this node follows the world's move is sent again,
// with the same seq, once this node routes the world to its new home
// (the move's publish), within ctx: the old home applied nothing, and the
// new home applies it once (the world's idempotency records moved with
// it). A refusal that names no fence (a remote leader's) is sent again
// likewise once this node's copy names the fence and the node routes the
// world there, or once the node routes the world to another group it
// runs than the one that refused. Elsewhere the refusal is the answer
// (421), as before; so it is when the publish comes after ctx's end (the
// request's time).
func (c *playConn) actOnLeader(ctx context.Context, a *fsm.Action, raw json.RawMessage) (wire.Event, error) {
	sent := c.s.routeOf(c.world)
	ev, err := c.s.ActOnLeader(ctx, a, raw, c.token)
	for wait := time.Millisecond; ; wait = min(2*wait, 16*time.Millisecond) {
		f, named, moved := worldMoved(err)
		if !moved {
			return ev, err
		}
		if !named {
			// The leader refused before this node's replica applied the
			// fence, or forwarded: this node's copy may name it.
			f, named = c.s.fenceOf(c.world)
		}
		if named && !c.s.follows(f) {
			return ev, err
		}
		select {
		case <-ctx.Done():
			return ev, err
		case <-time.After(wait):
		}
		if named && c.s.routesTo(c.world, f.Shard) || !named && c.s.movedOn(c.world, sent) {
			sent = c.s.routeOf(c.world)
			ev, err = c.s.ActOnLeader(ctx, a, raw, c.token)
		}
	}
}
