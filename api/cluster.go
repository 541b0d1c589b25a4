package api

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/gsd-dev/gsd/fsm"
)

// okJSON answers membership changes that have nothing else to say.
var okJSON = map[string]bool{"ok": true}

// status handles GET /v1/status: this node's view of its group. It, the
// snapshot and the health routes ask about this node itself (Backend's
// Status, Ready, Snapshot), never where a world's commands go.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, s.b.Status())
}

// join handles POST /v1/cluster/join (leader only; forwarded).
func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, err, true)
		return
	}
	var n fsm.NodeInfo
	if err := decodeStrict(body, &n); err != nil {
		s.writeError(w, err, true)
		return
	}
	if n.ID == "" || n.RaftAddr == "" {
		s.writeError(w, fmt.Errorf("%w: join needs id and raft_addr", fsm.ErrMalformed), true)
		return
	}
	s.leaderCall(w, r, internalClusterPath+"/join", body, func(r *http.Request, g Group) error {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		return g.Join(ctx, n)
	})
}

// removeNode handles DELETE /v1/cluster/nodes/{id} (leader only; forwarded).
func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkName("node id", id); err != nil {
		s.writeError(w, err, true)
		return
	}
	s.leaderCall(w, r, internalClusterPath+"/nodes/"+url.PathEscape(id), nil, func(r *http.Request, g Group) error {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		return g.Remove(ctx, id)
	})
}

// transferLeadership handles POST /v1/cluster/transfer-leadership (leader
// only; forwarded).
func (s *Server) transferLeadership(w http.ResponseWriter, r *http.Request) {
	s.leaderCall(w, r, internalClusterPath+"/transfer-leadership", nil, func(r *http.Request, g Group) error {
		ctx, cancel := s.requestContext(r)
		defer cancel()
		return g.TransferLeadership(ctx)
	})
}

// leaderCall runs a membership change on the leader of the group that
// holds the cluster's membership (world "") and answers {"ok":true}; path
// is its internal call's.
func (s *Server) leaderCall(w http.ResponseWriter, r *http.Request, path string, body []byte, call func(*http.Request, Group) error) {
	s.onLeader(w, r, "", KindWrite, path, body, func(g Group) error {
		if err := call(r, g); err != nil {
			return err
		}
		s.writeJSON(w, http.StatusOK, okJSON)
		return nil
	})
}

// snapshot handles POST /v1/cluster/snapshot: a snapshot of this node (any
// node; never forwarded, since each node snapshots its own log).
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	index, err := s.b.Snapshot(ctx)
	if err != nil {
		s.writeError(w, err, false)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]uint64{"index": index})
}

// healthz handles GET /healthz: 200 while the process serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz handles GET /readyz: 200 when the backend is ready, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.b.Ready() {
		s.writeError(w, errNotReady, false)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
