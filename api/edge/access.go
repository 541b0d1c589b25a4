package edge

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gsd-dev/gsd/internal/credential"
)

// The cluster credential (docs/API.md, "Cluster credential"). With
// Config.ClusterSecret set, the edge guards two kinds of routes:
//
//   - internal routes, which only nodes of the cluster call (the
//     node-to-node service under InternalPrefix, internal.go; the former
//     session and acks paths; any request marked HeaderForwarded):
//     they need the secret in HeaderClusterKey;
//   - admin routes (membership, snapshot, kick, ban, unban, player data
//     export and import, drain): they need the secret, or a player-token-
//     style JWT carrying the claim "gsd_admin": true (auth on).
//
// Without a secret every route stays open as before, and the admin and
// internal endpoints rely on the HTTP port being reachable only by trusted
// parties.

// routeAccess says who may call a route.
type routeAccess int

const (
	accessPublic   routeAccess = iota
	accessAdmin                // the secret or an admin token
	accessInternal             // the secret only
)

// routeAccesses lists the guarded routes by mux pattern.
var routeAccesses = map[string]routeAccess{
	"POST /v1/worlds/{world}/sessions/{op}":      accessInternal,
	"POST /v1/sessions:acks":                     accessInternal,
	"POST /v1/cluster/join":                      accessAdmin,
	"PUT /v1/worlds/{world}/rules":               accessAdmin,
	"DELETE /v1/cluster/nodes/{id}":              accessAdmin,
	"POST /v1/cluster/transfer-leadership":       accessAdmin,
	"POST /v1/cluster/snapshot":                  accessAdmin,
	"GET /v1/cluster/backup":                     accessAdmin,
	"POST /v1/worlds/{world}/sessions/{id}/kick": accessAdmin,
	"GET /v1/worlds/{world}/sessions:export":     accessAdmin,
	"POST /v1/worlds/{world}/sessions:import":    accessAdmin,
	"POST /v1/worlds/{world}/bans":               accessAdmin,
	"DELETE /v1/worlds/{world}/bans/{player}":    accessAdmin,
	"POST /v1/node/drain":                        accessAdmin,
	"DELETE /v1/node/drain":                      accessAdmin,
	"POST /v1/worlds/{world}/audit/checkpoint":   accessAdmin,
}

// checkAccess returns nil when r may reach the route of pattern, else an
// unauthorized (no or a wrong credential) or forbidden (a valid one that
// does not reach this far) error.
func (s *Core) checkAccess(r *http.Request, pattern string) error {
	if err := s.checkPeerCert(r, pattern); err != nil {
		return err
	}
	if len(s.cfg.ClusterSecret) == 0 {
		return nil
	}
	access := routeAccesses[pattern]
	if r.Header.Get(HeaderForwarded) != "" || IsInternalPattern(pattern) {
		access = accessInternal // only nodes forward, or call internal routes
	}
	if access == accessPublic {
		return nil
	}
	if key := r.Header.Get(HeaderClusterKey); key != "" {
		if !hmac.Equal([]byte(key), s.cfg.ClusterSecret) {
			return fmt.Errorf("%w: wrong cluster secret in %s", ErrUnauthorized, HeaderClusterKey)
		}
		return nil
	}
	if access == accessInternal {
		return fmt.Errorf("%w: internal endpoint: only nodes of the cluster call it, with the cluster secret in %s", ErrUnauthorized, HeaderClusterKey)
	}
	tok := Bearer(r)
	if tok == "" || s.Auth() == nil {
		return fmt.Errorf("%w: admin endpoint: send the cluster secret in %s or an admin token (claim %q)", ErrUnauthorized, HeaderClusterKey, credential.AdminClaim)
	}
	return s.Auth().VerifyAdmin(tok)
}

// Handler wraps mux, the routes of the edge's surfaces: it answers
// unrouted requests in JSON, turns panics into 500s, checks the cluster
// credential of admin and internal routes and the caller's wire version,
// and records every request's route, status and latency.
func (s *Core) Handler(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(mux, w, r) })
}

func (s *Core) serve(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if !sw.wrote {
				s.WriteError(sw, fmt.Errorf("%w: %v", ErrInternal, v), false)
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.Metrics().Observe(route, sw.code(), time.Since(start))
	}()
	_, pattern := mux.Handler(r)
	if pattern == "" {
		// The mux's own 404/405 (or a path-cleaning redirect): keep its
		// status and headers, answer in JSON.
		mux.ServeHTTP(&jsonErrorWriter{statusWriter: sw}, r)
		return
	}
	if err := s.checkAccess(r, pattern); err != nil {
		s.WriteError(sw, err, false)
		return
	}
	if err := CheckWireVersion(r.Header); err != nil {
		s.WriteError(sw, err, false)
		return
	}
	mux.ServeHTTP(sw, r)
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

// jsonErrorWriter turns the mux's plain-text error answers into the JSON
// error shape, keeping their status and headers (Allow on a 405).
type jsonErrorWriter struct {
	*statusWriter
	replaced bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code < 400 {
		w.statusWriter.WriteHeader(code)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.statusWriter.WriteHeader(code)
	body := ErrorBody{Code: CodeNotFound, Error: "no such route"}
	if code == http.StatusMethodNotAllowed {
		body = ErrorBody{Code: CodeMethodNotAllowed, Error: "method not allowed; allowed: " + h.Get("Allow")}
	}
	_ = json.NewEncoder(w.statusWriter).Encode(body)
	w.replaced = true
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.statusWriter.Write(b)
}
