package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// Checkpoint mismatches (issue 12, store/checkpoint.go). A replica whose
// hash of a world differs from the hash a leader's checkpoint carried
// reports it to the leader of the world's group, which counts the
// reporters against that checkpoint and steps down once they are a
// majority of the voters:
//
//	POST /internal/v1/worlds/{world}/checkpoints:mismatch  wire.CheckpointMismatch → wire.MismatchAnswer
//
// Node-authenticated like every internal route (the cluster secret when
// set, HeaderForwarded always), never sent on: a node that does not lead
// the world's group answers not_leader and the reporter's Forwarder asks
// the Router again. A leader of an older version has no such route and
// answers 404; the Forwarder drops the report then.

// MismatchReporter is a Group that takes checkpoint mismatch reports:
// *store.Store.
type MismatchReporter interface {
	ReportMismatch(m store.CheckpointMismatch) (steppedDown bool, err error)
}

var _ MismatchReporter = (*store.Store)(nil)

// InternalMismatchPath is the path of the report of a mismatch in world.
func InternalMismatchPath(world string) string {
	return edge.InternalPrefix + "/worlds/" + url.PathEscape(world) + "/checkpoints:mismatch"
}

// CheckpointMismatch handles POST /internal/v1/worlds/{world}/checkpoints:mismatch
// on the leader of the world's group.
func (p *API) CheckpointMismatch(w http.ResponseWriter, r *http.Request) {
	var req wire.CheckpointMismatch
	if !p.ReadJSON(w, r, p.Config().MaxBodyBytes, &req) {
		return
	}
	m, err := DecodeMismatch(r.PathValue("world"), req)
	if err != nil {
		p.WriteError(w, err, true)
		return
	}
	err = p.RouteCall(m.World, edge.KindWrite, edge.PeerHop(r), func(g edge.Group) error {
		down, err := reportTo(g, m)
		if err == nil {
			p.WriteJSON(w, http.StatusOK, wire.MismatchAnswer{SteppedDown: down})
		}
		return err
	}, nil)
	if err != nil {
		p.WriteError(w, err, true)
	}
}

// reportTo runs the report on g, when g takes reports.
func reportTo(g edge.Group, m store.CheckpointMismatch) (bool, error) {
	rep, ok := g.(MismatchReporter)
	if !ok {
		return false, fmt.Errorf("%w: this node's group takes no checkpoint mismatch reports", fsm.ErrNotSupported)
	}
	return rep.ReportMismatch(m)
}

// DecodeMismatch checks a report's body against the world of its path and
// returns it as the store's type; a bad one is malformed (400).
func DecodeMismatch(world string, req wire.CheckpointMismatch) (store.CheckpointMismatch, error) {
	if req.World == "" {
		req.World = world
	}
	if req.World != world {
		return store.CheckpointMismatch{}, fmt.Errorf("%w: world %q in the body, %q in the path", fsm.ErrMalformed, req.World, world)
	}
	for _, f := range []struct{ what, v string }{{"world", world}, {"node", req.Node}, {"leader", req.Leader}} {
		if err := edge.CheckName(f.what, f.v); err != nil {
			return store.CheckpointMismatch{}, err
		}
	}
	if req.Index == 0 {
		return store.CheckpointMismatch{}, fmt.Errorf("%w: index must be the positive log index of the checkpointed hash", fsm.ErrMalformed)
	}
	lh, err := parseHash("leader_hash", req.LeaderHash)
	if err != nil {
		return store.CheckpointMismatch{}, err
	}
	h, err := parseHash("hash", req.Hash)
	if err != nil {
		return store.CheckpointMismatch{}, err
	}
	return store.CheckpointMismatch{Node: req.Node, World: world, Index: req.Index, Leader: req.Leader, LeaderHash: lh, Local: h}, nil
}

// EncodeMismatch is the body that reports m.
func EncodeMismatch(m store.CheckpointMismatch) wire.CheckpointMismatch {
	return wire.CheckpointMismatch{Node: m.Node, World: m.World, Index: m.Index, Leader: m.Leader,
		LeaderHash: wire.Hash(wire.HashString(m.LeaderHash)), Hash: wire.Hash(wire.HashString(m.Local))}
}

func parseHash(what string, h wire.Hash) (uint64, error) {
	if len(h) == 0 || len(h) > 16 {
		return 0, fmt.Errorf("%w: %s must be 1..16 hex digits, got %q", fsm.ErrMalformed, what, h)
	}
	v, err := strconv.ParseUint(string(h), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s must be 1..16 hex digits, got %q", fsm.ErrMalformed, what, h)
	}
	return v, nil
}

// SendMismatch reports m to the leader of m.World's group: on this node's
// group when this node leads it, else by the node-to-node call. It
// returns whether the report made the leader step down. Errors: wrapping
// store.ErrNotLeader when no leader is known or the called node no longer
// leads, a *edge.RemoteError for another refusal (404 from a leader of an
// older version), or the failed call's.
func (p *API) SendMismatch(ctx context.Context, m store.CheckpointMismatch) (bool, error) {
	rt, err := p.RouteRemote(m.World, edge.KindWrite)
	if err != nil {
		return false, err
	}
	if rt.Local() {
		return reportTo(rt.Group, m)
	}
	body, _ := json.Marshal(EncodeMismatch(m)) // strings and integers: it always encodes
	var ans wire.MismatchAnswer
	if err := p.CallNode(ctx, rt, http.MethodPost, InternalMismatchPath(m.World), body, "", &ans); err != nil {
		return false, err
	}
	return ans.SteppedDown, nil
}
