package admin

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
)

// okJSON answers membership changes that have nothing else to say.
var okJSON = map[string]bool{"ok": true}

// Status handles GET /v1/status: this node's view of its group. It, the
// Snapshot and the health routes ask about this node itself (Backend's
// Status, Ready, Snapshot), never where a world's commands go.
func (a *API) Status(w http.ResponseWriter, r *http.Request) {
	a.WriteJSON(w, http.StatusOK, a.Backend().Status())
}

// Join handles POST /v1/cluster/join (leader only; forwarded).
func (a *API) Join(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, a.Config().MaxBodyBytes)
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	var n fsm.NodeInfo
	if err := edge.DecodeStrict(body, &n); err != nil {
		a.WriteError(w, err, true)
		return
	}
	if n.ID == "" || n.RaftAddr == "" {
		a.WriteError(w, fmt.Errorf("%w: join needs id and raft_addr", fsm.ErrMalformed), true)
		return
	}
	if err := a.CheckJoiner(r, n.ID); err != nil { // mutual TLS (api/edge/peer_tls.go)
		a.WriteError(w, err, true)
		return
	}
	a.leaderCall(w, r, edge.InternalClusterPath+"/join", body, func(r *http.Request, g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		return g.Join(ctx, n)
	})
}

// RemoveNode handles DELETE /v1/cluster/nodes/{id} (leader only; forwarded).
func (a *API) RemoveNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := edge.CheckName("node id", id); err != nil {
		a.WriteError(w, err, true)
		return
	}
	a.leaderCall(w, r, edge.InternalClusterPath+"/nodes/"+url.PathEscape(id), nil, func(r *http.Request, g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		return g.Remove(ctx, id)
	})
}

// TransferLeadership handles POST /v1/cluster/transfer-leadership (leader
// only; forwarded).
func (a *API) TransferLeadership(w http.ResponseWriter, r *http.Request) {
	a.leaderCall(w, r, edge.InternalClusterPath+"/transfer-leadership", nil, func(r *http.Request, g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		return g.TransferLeadership(ctx)
	})
}

// leaderCall runs a membership change on the leader of the group that
// holds the cluster's membership (world "") and answers {"ok":true}; path
// is its internal call's.
func (a *API) leaderCall(w http.ResponseWriter, r *http.Request, path string, body []byte, call func(*http.Request, edge.Group) error) {
	a.OnLeader(w, r, "", edge.KindWrite, path, body, func(g edge.Group) error {
		if err := call(r, g); err != nil {
			return err
		}
		a.WriteJSON(w, http.StatusOK, okJSON)
		return nil
	})
}

// Snapshot handles POST /v1/cluster/snapshot: a snapshot of this node (any
// node; never forwarded, since each node snapshots its own log).
func (a *API) Snapshot(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	index, err := a.Backend().Snapshot(ctx)
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	a.WriteJSON(w, http.StatusOK, map[string]uint64{"index": index})
}

// Healthz handles GET /healthz: 200 while the process serves.
func (a *API) Healthz(w http.ResponseWriter, r *http.Request) {
	a.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz handles GET /readyz: 200 when the backend is ready, else 503.
func (a *API) Readyz(w http.ResponseWriter, r *http.Request) {
	if !a.Backend().Ready() {
		a.WriteError(w, edge.ErrNotReady, false)
		return
	}
	a.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
