package api

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
)

// okJSON answers membership changes that have nothing else to say.
var okJSON = map[string]bool{"ok": true}

// status handles GET /v1/status: this node's view of its group. It, the
// snapshot and the health routes ask about this node itself (Backend's
// Status, Ready, Snapshot), never where a world's commands go.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.WriteJSON(w, http.StatusOK, s.b.Status())
}

// join handles POST /v1/cluster/join (leader only; forwarded).
func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.WriteError(w, err, true)
		return
	}
	var n fsm.NodeInfo
	if err := edge.DecodeStrict(body, &n); err != nil {
		s.WriteError(w, err, true)
		return
	}
	if n.ID == "" || n.RaftAddr == "" {
		s.WriteError(w, fmt.Errorf("%w: join needs id and raft_addr", fsm.ErrMalformed), true)
		return
	}
	s.LeaderCall(w, r, edge.InternalClusterPath+"/join", body, func(r *http.Request, g edge.Group) error {
		ctx, cancel := s.RequestContext(r)
		defer cancel()
		return g.Join(ctx, n)
	})
}

// removeNode handles DELETE /v1/cluster/nodes/{id} (leader only; forwarded).
func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := edge.CheckName("node id", id); err != nil {
		s.WriteError(w, err, true)
		return
	}
	s.LeaderCall(w, r, edge.InternalClusterPath+"/nodes/"+url.PathEscape(id), nil, func(r *http.Request, g edge.Group) error {
		ctx, cancel := s.RequestContext(r)
		defer cancel()
		return g.Remove(ctx, id)
	})
}

// transferLeadership handles POST /v1/cluster/transfer-leadership (leader
// only; forwarded).
func (s *Server) transferLeadership(w http.ResponseWriter, r *http.Request) {
	s.LeaderCall(w, r, edge.InternalClusterPath+"/transfer-leadership", nil, func(r *http.Request, g edge.Group) error {
		ctx, cancel := s.RequestContext(r)
		defer cancel()
		return g.TransferLeadership(ctx)
	})
}

// leaderCall runs a membership change on the leader of the group that
// holds the cluster's membership (world "") and answers {"ok":true}; path
// is its internal call's.
func (s *Server) LeaderCall(w http.ResponseWriter, r *http.Request, path string, body []byte, call func(*http.Request, edge.Group) error) {
	s.OnLeader(w, r, "", edge.KindWrite, path, body, func(g edge.Group) error {
		if err := call(r, g); err != nil {
			return err
		}
		s.WriteJSON(w, http.StatusOK, okJSON)
		return nil
	})
}

// snapshot handles POST /v1/cluster/snapshot: a snapshot of this node (any
// node; never forwarded, since each node snapshots its own log).
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.RequestContext(r)
	defer cancel()
	index, err := s.b.Snapshot(ctx)
	if err != nil {
		s.WriteError(w, err, false)
		return
	}
	s.WriteJSON(w, http.StatusOK, map[string]uint64{"index": index})
}

// healthz handles GET /healthz: 200 while the process serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz handles GET /readyz: 200 when the backend is ready, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.b.Ready() {
		s.WriteError(w, edge.ErrNotReady, false)
		return
	}
	s.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
