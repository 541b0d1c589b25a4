package edge

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/tracing"
	"github.com/gsd-dev/gsd/wire"
)

// RemoteError is an error answer of the leader to a forwarded call.
type RemoteError struct {
	Status int    // the HTTP status
	Code   string // the error code
	Msg    string // the message
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("leader: %s (%d %s)", e.Msg, e.Status, e.Code)
}

// SessionOps names the session commands the internal endpoint accepts.
var SessionOps = map[string]fsm.CmdKind{
	"open":   fsm.CmdSessionOpen,
	"ack":    fsm.CmdSessionAck,
	"resume": fsm.CmdSessionResume,
	"close":  fsm.CmdSessionClose,
	"data":   fsm.CmdSessionData,
}

var SessionOpNames = map[fsm.CmdKind]string{
	fsm.CmdSessionOpen:   "open",
	fsm.CmdSessionAck:    "ack",
	fsm.CmdSessionResume: "resume",
	fsm.CmdSessionClose:  "close",
	fsm.CmdSessionData:   "data",
}

// DataMap is data items as a map (nil for none).
func DataMap(items []fsm.DataItem) map[string]fsm.Value {
	if len(items) == 0 {
		return nil
	}
	m := make(map[string]fsm.Value, len(items))
	for _, it := range items {
		m[it.Key] = it.Value
	}
	return m
}

// DataItems is a data map as items sorted by key, so that a command's
// bytes do not depend on map order.
func DataItems(m map[string]fsm.Value) []fsm.DataItem {
	if len(m) == 0 {
		return nil
	}
	items := make([]fsm.DataItem, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		items = append(items, fsm.DataItem{Key: k, Value: m[k]})
	}
	return items
}

// ToSessionJSON is a session's wire form.
func ToSessionJSON(i fsm.SessionInfo) wire.SessionInfo {
	return wire.SessionInfo{World: i.World, ID: i.ID, Player: i.Player, Acked: i.Acked, Epoch: i.Epoch, Node: i.Node,
		Opened: i.Opened, Seen: i.Seen, Replaced: i.Replaced, Kicked: i.Kicked, Data: i.Data, DataVersion: i.DataVersion}
}

// SessionInfoOf is the session a wire form names.
func SessionInfoOf(j wire.SessionInfo) fsm.SessionInfo {
	return fsm.SessionInfo{World: j.World, ID: j.ID, Player: j.Player, Acked: j.Acked, Epoch: j.Epoch, Node: j.Node,
		Opened: j.Opened, Seen: j.Seen, Replaced: j.Replaced, Kicked: j.Kicked, Data: j.Data, DataVersion: j.DataVersion}
}

// nodeID is this node's id, recorded in the sessions it holds.
func (s *Core) NodeID() string { return s.b.Status().ID }

// session runs a session command on the world's leader: here when this
// node leads, else by an internal call. token is the player's JWT, sent
// along with auth on.
func (s *Core) Session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd, token string) (fsm.SessionInfo, error) {
	var info fsm.SessionInfo
	err := s.RouteCall(c.World, KindSession, NoHop, func(g Group) error {
		var err error
		s.ClaimTeam(kind, c, token)
		info, err = g.Session(ctx, kind, c)
		return err
	}, func(rt Route) error {
		body, _ := json.Marshal(wire.SessionCmd{ID: c.ID, Player: c.Player, TokenHash: hex.EncodeToString(c.TokenHash[:]),
			Seq: c.Seq, Reason: c.Reason, Node: c.Node, Data: DataMap(c.Data)})
		var out wire.SessionInfo
		if err := s.CallNode(ctx, rt, http.MethodPost, InternalSessionPath(c.World, SessionOpNames[kind]), body, token, &out); err != nil {
			return err
		}
		info = SessionInfoOf(out)
		return nil
	})
	return info, err
}

// ActOnLeader runs a play connection's action on the world's leader: here
// when this node leads, else by the compact act route (actforward.go).
func (s *Core) ActOnLeader(ctx context.Context, a *fsm.Action, raw json.RawMessage, token string) (ev wire.Event, err error) {
	traced := false
	if s.cfg.Tracer != nil {
		var span tracing.Span
		ctx, span = s.cfg.Tracer.Start(ctx, spanPlayAct)
		s.cfg.Tracer.Await(actKey(a), span)
		defer func() { s.endActSpan(span, a, ev, err) }()
		traced = span.Recording()
	}
	err = s.RouteCall(a.World, KindWrite, NoHop, func(g Group) error {
		e, dup, err := g.Act(ctx, a)
		if err == nil {
			ev = EventJSON(e, dup)
		}
		return err
	}, func(rt Route) error {
		// A sampled action goes alone, so its forward is its own span.
		ev, err = s.actRemote(ctx, rt, a, raw, token, traced) // actforward.go
		return err
	})
	return ev, err
}

// SessionAcks replicates a batch of acks, all of one group, on the group's
// leader (routed by the first ack's world): here when this node leads,
// else by one internal call.
func (s *Core) SessionAcks(ctx context.Context, acks []fsm.SessionAck) (int, error) {
	var n int
	err := s.RouteCall(acks[0].World, KindSession, NoHop, func(g Group) error {
		var err error
		n, err = g.SessionAcks(ctx, acks)
		return err
	}, func(rt Route) error {
		req := wire.Acks{Acks: make([]wire.Ack, len(acks))}
		for i, a := range acks {
			req.Acks[i] = wire.Ack(a)
		}
		body, _ := json.Marshal(req)
		var out wire.AcksAnswer
		if err := s.CallNode(ctx, rt, http.MethodPost, InternalAcksPath, body, "", &out); err != nil {
			return err
		}
		n = out.Acked
		return nil
	})
	return n, err
}

// EventJSON is an event's wire form, marked when it answers a repeat.
func EventJSON(ev *fsm.Event, dup bool) wire.Event {
	j := ev.Wire()
	j.Duplicate = dup
	return j
}

// adminBody reads a small strict JSON body into v (an empty body leaves v
// as it is) and returns the bytes for forwarding.
func (s *Core) AdminBody(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	body, err := ReadBody(w, r, s.cfg.MaxBodyBytes)
	if err == nil && len(body) > 0 {
		err = DecodeStrict(body, v)
	}
	if err != nil {
		s.WriteError(w, err, true)
		return nil, false
	}
	return body, true
}

// checkBan refuses a banned player's action (403 banned), on this node's
// applied state.
func (s *Core) CheckBan(world, player string) error {
	if reason, banned := s.b.Banned(world, player); banned {
		return fmt.Errorf("%w: %s from world %s: %s", fsm.ErrBanned, player, world, reason)
	}
	return nil
}
