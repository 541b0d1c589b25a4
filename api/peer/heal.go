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
	"github.com/gsd-dev/gsd/wire"
)

// Healing a replica (issue 12, store/checkpoint_heal.go). A leader that
// removed a replica whose state differed from the majority's orders it to
// move the group's data aside and start the group empty, then adds it
// again:
//
//	POST /internal/v1/groups/{group}/checkpoints:heal  wire.HealOrder → wire.HealAnswer (202)
//
// Before it removes anyone, the leader asks each other voter for its
// hash at the checkpoint (a majority must share the leader's, or the
// leader may be the odd one):
//
//	GET /internal/v1/groups/{group}/worlds/{world}/checkpoints/{index}  (none) → wire.CheckpointMark
//
// Node-authenticated like every internal route (the cluster secret when
// set, HeaderForwarded always); the order names the node, and a node
// refuses an order meant for another (a stale address). The route is
// registered by the daemon (RegisterHeal), which alone can restart a
// group; a node without it answers 404 and the leader counts the heal as
// failed.

// InternalHealPattern is the mux pattern of the heal order.
const InternalHealPattern = "POST " + edge.InternalPrefix + "/groups/{group}/checkpoints:heal"

// InternalHealPath is the path of the order to heal group.
func InternalHealPath(group uint64) string {
	return edge.InternalPrefix + "/groups/" + strconv.FormatUint(group, 10) + "/checkpoints:heal"
}

// InternalMarkPattern is the mux pattern of the question for a mark.
const InternalMarkPattern = "GET " + edge.InternalPrefix + "/groups/{group}/worlds/{world}/checkpoints/{index}"

// InternalMarkPath is the path of the question for a node's mark of world
// at the checkpoint of index in group.
func InternalMarkPath(group uint64, world string, index uint64) string {
	return edge.InternalPrefix + "/groups/" + strconv.FormatUint(group, 10) + "/worlds/" + url.PathEscape(world) +
		"/checkpoints/" + strconv.FormatUint(index, 10)
}

// MarkReader reads this node's mark of world at the checkpoint of index
// in group (store.Store.CheckpointMark).
type MarkReader func(group uint64, world string, index uint64) (hash uint64, known bool, err error)

// HealTaker takes a heal order on the node: it must return at once and do
// the work after (the leader waits for the answer).
type HealTaker func(group uint64, leader string) error

// RegisterHeal adds the heal order's and the mark question's routes to
// mux, for node self.
func (p *API) RegisterHeal(mux *http.ServeMux, self string, take HealTaker, marks MarkReader) {
	mux.HandleFunc(InternalMarkPattern, p.internalOnly(func(w http.ResponseWriter, r *http.Request) {
		group, ok := p.pathUint(w, r, "group", "a group id")
		if !ok {
			return
		}
		index, ok := p.pathUint(w, r, "index", "a log index")
		if !ok {
			return
		}
		world := r.PathValue("world")
		if err := edge.CheckName("world", world); err != nil {
			p.WriteError(w, err, false)
			return
		}
		h, known, err := marks(group, world, index)
		if err != nil {
			p.WriteError(w, err, false)
			return
		}
		ans := wire.CheckpointMark{World: world, Index: index, Known: known}
		if known {
			ans.Hash = wire.Hash(wire.HashString(h))
		}
		p.WriteJSON(w, http.StatusOK, ans)
	}))
	mux.HandleFunc(InternalHealPattern, p.internalOnly(func(w http.ResponseWriter, r *http.Request) {
		group, ok := p.pathUint(w, r, "group", "a group id")
		if !ok {
			return
		}
		var order wire.HealOrder
		if !p.ReadJSON(w, r, p.Config().MaxBodyBytes, &order) {
			return
		}
		if err := edge.CheckName("leader", order.Leader); err != nil {
			p.WriteError(w, err, true)
			return
		}
		if order.Node != self {
			p.WriteError(w, fmt.Errorf("%w: the heal order names node %q, this is %q", fsm.ErrMalformed, order.Node, self), true)
			return
		}
		if err := take(group, order.Leader); err != nil {
			p.WriteError(w, err, true)
			return
		}
		p.WriteJSON(w, http.StatusAccepted, wire.HealAnswer{Accepted: true})
	}))
}

// pathUint parses the path value name as an unsigned integer, or answers
// malformed.
func (p *API) pathUint(w http.ResponseWriter, r *http.Request, name, what string) (uint64, bool) {
	v, err := strconv.ParseUint(r.PathValue(name), 10, 64)
	if err != nil {
		p.WriteError(w, fmt.Errorf("%w: %s must be %s, got %q", fsm.ErrMalformed, name, what, r.PathValue(name)), true)
		return 0, false
	}
	return v, true
}

// AskMark asks node, at its HTTP address, for its mark of world at the
// checkpoint of index in group (store.Config.ConfirmMark).
func (p *API) AskMark(ctx context.Context, group uint64, node fsm.NodeInfo, world string, index uint64) (uint64, bool, error) {
	if node.HTTPAddr == "" {
		return 0, false, fmt.Errorf("ask %s for its mark: no HTTP address in the node table", node.ID)
	}
	var ans wire.CheckpointMark
	rt := edge.Route{Node: node.ID, Addr: node.HTTPAddr}
	if err := p.CallNode(ctx, rt, http.MethodGet, InternalMarkPath(group, world, index), nil, "", &ans); err != nil {
		return 0, false, err
	}
	if !ans.Known {
		return 0, false, nil
	}
	h, err := parseHash("hash", ans.Hash)
	if err != nil {
		return 0, false, fmt.Errorf("ask %s for its mark: %w", node.ID, err)
	}
	return h, true, nil
}

// SendHeal orders node, at its HTTP address, to heal group; leader is the
// sender. Errors: a *edge.RemoteError for a refusal (404 from a node of
// an older version), or the failed call's.
func (p *API) SendHeal(ctx context.Context, group uint64, node fsm.NodeInfo, leader string) error {
	if node.HTTPAddr == "" {
		return fmt.Errorf("heal %s: no HTTP address in the node table", node.ID)
	}
	body, _ := json.Marshal(wire.HealOrder{Node: node.ID, Leader: leader}) // strings: it always encodes
	var ans wire.HealAnswer
	rt := edge.Route{Node: node.ID, Addr: node.HTTPAddr}
	if err := p.CallNode(ctx, rt, http.MethodPost, InternalHealPath(group), body, "", &ans); err != nil {
		return err
	}
	if !ans.Accepted {
		return fmt.Errorf("heal %s: the node did not accept the order", node.ID)
	}
	return nil
}
