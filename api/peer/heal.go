package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

// HealTaker takes a heal order on the node: it must return at once and do
// the work after (the leader waits for the answer).
type HealTaker func(group uint64, leader string) error

// RegisterHeal adds the heal order's route to mux, for node self.
func (p *API) RegisterHeal(mux *http.ServeMux, self string, take HealTaker) {
	mux.HandleFunc(InternalHealPattern, p.internalOnly(func(w http.ResponseWriter, r *http.Request) {
		group, err := strconv.ParseUint(r.PathValue("group"), 10, 64)
		if err != nil {
			p.WriteError(w, fmt.Errorf("%w: group must be a group id, got %q", fsm.ErrMalformed, r.PathValue("group")), true)
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
