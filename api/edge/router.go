package edge

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// Kind says what a routed command asks of a world's group.
type Kind int

const (
	// KindWrite proposes to the group: an action, a world's creation, an
	// admin session command, a membership change.
	KindWrite Kind = iota
	// KindRead is a linearizable read: only the group's leader serves it.
	KindRead
	// KindSession is a play connection's session command or acks batch.
	KindSession
)

// Group is the handle of one Raft group that this node leads: what the
// edge runs there. *store.Store implements it; the shard manager will hand
// out one per group.
type Group interface {
	Act(ctx context.Context, a *fsm.Action) (ev *fsm.Event, dup bool, err error)
	CreateWorld(ctx context.Context, id string, rules fsm.Rules) error
	// DeleteWorld removes a world and everything keyed by it; incarnation,
	// when not 0, must be the world's.
	DeleteWorld(ctx context.Context, world string, incarnation uint64) (fsm.WorldInfo, error)
	// UpdateRules replaces a world's rules and returns its new rules
	// version; expect, when not 0, is the version it replaces.
	UpdateRules(ctx context.Context, world string, rules fsm.Rules, expect uint64) (uint64, error)
	Entity(ctx context.Context, world, id string, c store.Consistency) (fsm.EntityView, error)
	Session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd) (fsm.SessionInfo, error)
	SessionAcks(ctx context.Context, acks []fsm.SessionAck) (int, error)
	PlayerData(world string) (map[string]map[string]fsm.Value, error)
	Join(ctx context.Context, n fsm.NodeInfo) error
	Remove(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context) error
}

// Route is where a command goes: this node's group (Group set), or the
// node that serves it (Node and Addr).
type Route struct {
	// GroupID names the group that owns the world, local or not. Work
	// batched across worlds (play acks) is batched per GroupID.
	GroupID string
	// Group is set when this node serves the command itself.
	Group Group
	// Node and Addr name the node that serves it when Group is nil: its id
	// and HTTP address (host:port or a base URL).
	Node, Addr string
}

// Local reports whether this node serves the command.
func (r Route) Local() bool { return r.Group != nil }

// Router answers where world's commands of a kind go. The edge asks it for
// every command that only a group's leader may run, and never asks Raft
// "am I the leader" itself.
//
// The contract every implementation honours (the single-group one here,
// the multi-group one of the shard manager):
//   - Route is cheap, safe for concurrent use and does not block on the
//     network: it answers from what the node knows now (its groups' Raft
//     state, the shard map). The acker asks it once per ack per round.
//   - A Route with Group set means this node leads the world's group at
//     the time of the answer; the edge runs the command there. If the
//     group then says store.ErrNotLeader, the edge asks again once and
//     follows the new answer (leadership moved mid-call).
//   - Otherwise Node and Addr name the node that leads the group, for the
//     edge's internal client (internal.go); that node serves the call
//     without forwarding it again, so a stale answer costs one refusal,
//     never a loop.
//   - When no leader of the group is known, the error wraps
//     store.ErrNotLeader (answered 503 not_leader). Other errors (a world
//     placed nowhere, a world being moved) are answered as Classify maps
//     them.
//   - world "" names the group that holds the cluster's membership (the
//     node table): join, remove, leadership transfer. A world's creation
//     is routed by the new world's id (placement decides its group).
//   - GroupID is non-empty and the same for every world of one group, on
//     every node.
//   - kind lets an implementation send kinds apart (a later follower or
//     lease read); the single-group router routes every kind alike.
type Router interface {
	Route(world string, kind Kind) (Route, error)
}

// GroupRouter is a Router that can follow the group a forwarding node
// chose. Shard maps reach nodes at different times: a world placed a
// moment ago is in the forwarding node's map (it routed by the placement)
// and maybe not yet in this node's, which would route it by its name's
// hash, to another shard (a world created there, or an action answered
// unknown_world). RouteGroup routes world to group when this node's map
// does not place world by name, and as Route does otherwise: a map that
// places it is this node's newer knowledge, and a world moved away is
// fenced at its old home whichever node is stale.
type GroupRouter interface {
	Router
	RouteGroup(world string, kind Kind, group string) (Route, error)
}

// Hop says where a command came from: Forwarded when another node sent
// it (it is never sent on again), and the group that node routed it to
// (HeaderGroup), when it said.
type Hop struct {
	Forwarded bool
	Group     string
}

// NoHop is a command this node received from a client.
var NoHop = Hop{}

// HopOf is the hop of r: forwarded when marked HeaderForwarded.
func HopOf(r *http.Request) Hop {
	return Hop{Forwarded: IsForwarded(r), Group: r.Header.Get(HeaderGroup)}
}

// PeerHop is the hop of a request to an internal route, which only
// other nodes call: forwarded whether marked or not.
func PeerHop(r *http.Request) Hop { return Hop{Forwarded: true, Group: r.Header.Get(HeaderGroup)} }

// LeaderGroup is a Group that knows its own leadership: *store.Store.
type LeaderGroup interface {
	Group
	// IsLeader reports whether this node leads the group.
	IsLeader() bool
	// Leader returns the leader's id and HTTP address, when known.
	Leader() (id, httpAddr string)
}

// SingleGroupID names the only group of a single-group router.
const SingleGroupID = "0"

// SingleGroupRouter routes every world to one group: today's cluster,
// where one Raft group holds every world.
type SingleGroupRouter struct {
	g LeaderGroup
}

var _ Router = (*SingleGroupRouter)(nil)

// NewSingleGroupRouter routes every world to g.
func NewSingleGroupRouter(g LeaderGroup) *SingleGroupRouter {
	return &SingleGroupRouter{g: g}
}

// Route answers g when this node leads it, else its leader's address.
func (r *SingleGroupRouter) Route(world string, kind Kind) (Route, error) {
	if r.g.IsLeader() {
		return Route{GroupID: SingleGroupID, Group: r.g}, nil
	}
	id, addr := r.g.Leader()
	if addr == "" {
		return Route{}, fmt.Errorf("%w: no known leader", store.ErrNotLeader)
	}
	return Route{GroupID: SingleGroupID, Node: id, Addr: addr}, nil
}

// route runs a command for world where the router sends it: local on this
// node's group, else remote on the node the router names. It is the one
// place of the "leader? run here : call the leader" rule:
//   - hop says the command came from another node (an internal call, or a
//     request marked HeaderForwarded): it is never sent on again, so a node
//     that no longer leads refuses it with not_leader;
//   - a local run that fails with store.ErrNotLeader is routed once more,
//     and sent to the new leader if leadership moved meanwhile (a leader
//     that is not yet ready keeps its error);
//   - no known leader is not_leader.
//
// Nothing was proposed when remote runs: the local group either was not
// asked or said it does not lead, so sending the command on is safe.
func (s *Core) RouteCall(world string, kind Kind, hop Hop, local func(Group) error, remote func(Route) error) error {
	rt, err := s.routeHop(world, kind, hop)
	if err != nil {
		return err
	}
	if rt.Local() {
		err := local(rt.Group)
		if !errors.Is(err, store.ErrNotLeader) {
			return err
		}
		again, rerr := s.routeHop(world, kind, hop)
		switch {
		case rerr != nil:
			return rerr
		case again.Local():
			return err
		}
		rt = again
	}
	if hop.Forwarded {
		s.metrics.Forwards.WithLabelValues("loop").Inc()
		return fmt.Errorf("%w: a forwarded request reached a non-leader", store.ErrNotLeader)
	}
	return remote(rt)
}

// routeHop asks the router, following the group a forwarding node chose
// when the router can (GroupRouter).
func (s *Core) routeHop(world string, kind Kind, hop Hop) (Route, error) {
	if gr, ok := s.router.(GroupRouter); ok && hop.Forwarded && hop.Group != "" {
		return s.countNoLeader(gr.RouteGroup(world, kind, hop.Group))
	}
	return s.RouteRemote(world, kind)
}

// routeRemote asks the router, counting an unknown leader.
func (s *Core) RouteRemote(world string, kind Kind) (Route, error) {
	return s.countNoLeader(s.router.Route(world, kind))
}

// countNoLeader counts a route that found no known leader.
func (s *Core) countNoLeader(rt Route, err error) (Route, error) {
	if errors.Is(err, store.ErrNotLeader) {
		s.metrics.Forwards.WithLabelValues("no_leader").Inc()
	}
	return rt, err
}
