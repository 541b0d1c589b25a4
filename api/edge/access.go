package edge

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/credential"
)

// Who may call which route (docs/API.md, "Access"). Two credentials open
// routes: the cluster secret (Config.ClusterSecret) in HeaderClusterKey,
// which nodes and admin tools hold, and, with auth on (Config.Auth), a
// JWT whose role (auth.go) says who the caller is. Auth on is the one
// switch that closes every route but health, readiness and metrics:
//
//   - open routes (health, readiness, metrics) need nothing, ever;
//   - the play WebSocket is let through: its hello carries the token
//     (browsers cannot set headers), and play checks it before anything;
//   - reads and actions (every route not listed otherwise) need a valid
//     token of any role with auth on (actions take their player and role
//     from it), or the secret; with auth off, nothing;
//   - world creation, rules changes and players' data writes need a
//     server or admin token, or the secret; with auth off, world creation
//     nothing, rules changes and data writes the secret (when there is
//     one), as before;
//   - admin routes (membership, snapshot, backup, kick, ban, unban, player
//     data export and import, drain, signing an audit checkpoint) need an admin token or the secret; with
//     neither auth nor a secret they are open, as they always were;
//   - moderation routes (the review of anti-cheat flags) need a token of
//     the moderator role (anticheat/moderation.Class), an admin token or
//     the secret; with neither auth nor a secret they are open, as admin
//     routes are; recording a flag by hand is an admin route;
//   - the relay registry's routes (list, put, remove) are admin routes; a
//     world's relays (GET /v1/worlds/{world}/relays) are a read, as the
//     world's watch is;
//   - internal routes, which only nodes of the cluster call (the
//     node-to-node service under InternalPrefix; the former session and
//     acks paths; any request marked HeaderForwarded) need the secret when
//     there is one. Without a secret they need HeaderForwarded (the
//     handlers check it) and, with auth on, the caller's token that the
//     calling node passes on, checked as on the public route.

// routeAccess says who may call a route.
type routeAccess int

const (
	accessRead     routeAccess = iota // a token of any role (auth on), or the secret
	accessOpen                        // anyone, always
	accessPlay                        // anyone at the upgrade: the hello authenticates
	accessWorld                       // a server or admin token, or the secret
	accessRules                       // as accessWorld; with auth off, as accessAdmin
	accessAdmin                       // an admin token or the secret
	accessModerate                    // a moderator or admin token, or the secret
	accessInternal                    // the secret only
)

// routeAccesses lists by mux pattern the routes that are not reads or
// actions (accessRead, the zero value: an unlisted route is guarded).
var routeAccesses = map[string]routeAccess{
	"GET /healthz":                               accessOpen,
	"GET /readyz":                                accessOpen,
	"GET /metrics":                               accessOpen,
	"GET /v1/worlds/{world}/play":                accessPlay,
	"POST /v1/worlds":                            accessWorld,
	"PUT /v1/worlds/{world}/rules":               accessRules,
	"POST /v1/worlds/{world}/sessions/{op}":      accessInternal,
	"POST /v1/sessions:acks":                     accessInternal,
	"POST /v1/cluster/join":                      accessAdmin,
	"DELETE /v1/cluster/nodes/{id}":              accessAdmin,
	"POST /v1/cluster/transfer-leadership":       accessAdmin,
	"POST /v1/cluster/snapshot":                  accessAdmin,
	"GET /v1/cluster/backup":                     accessAdmin,
	"GET /v1/cluster/shards":                     accessAdmin,
	"POST /v1/cluster/shards":                    accessAdmin,
	"DELETE /v1/cluster/shards/{id}":             accessAdmin,
	"POST /v1/cluster/shards/worlds":             accessAdmin,
	"POST /v1/cluster/shards/{id}/replace":       accessAdmin,
	"DELETE /v1/cluster/shards/nodes/{id}":       accessAdmin,
	"POST /v1/cluster/shards/nodes":              accessAdmin,
	"POST /v1/cluster/shards/nodes:down":         accessAdmin,
	"POST /v1/cluster/worlds/{world}/move":       accessAdmin,
	"GET /v1/node/archive":                       accessAdmin,
	"POST /v1/node/archive:check":                accessAdmin,
	"POST /v1/worlds/{world}/audit/checkpoint":   accessAdmin,
	"POST /v1/worlds/{world}/sessions/{id}/kick": accessAdmin,
	"DELETE /v1/worlds/{world}":                  accessAdmin,
	"GET /v1/worlds/{world}/sessions:export":     accessAdmin,
	"POST /v1/worlds/{world}/sessions:import":    accessAdmin,
	"POST /v1/worlds/{world}/bans":               accessAdmin,
	"DELETE /v1/worlds/{world}/bans/{player}":    accessAdmin,
	"POST /v1/node/drain":                        accessAdmin,
	"DELETE /v1/node/drain":                      accessAdmin,
	"GET /v1/moderation/flags":                   accessModerate,
	"GET /v1/moderation/flags/{id}":              accessModerate,
	"POST /v1/moderation/flags/{id}/{op}":        accessModerate,
	"POST /v1/moderation/flags":                  accessAdmin,
	"GET /v1/relays":                             accessAdmin,
	"POST /v1/relays":                            accessAdmin,
	"DELETE /v1/relays/{id}":                     accessAdmin,

	// A game server's write of a player's data: as rules changes.
	"PATCH /v1/worlds/{world}/players/{player}/data": accessRules,
}

// publicAccess is the access of the public route an internal pattern
// serves ("POST /internal/v1/worlds" serves "POST /v1/worlds"), or of
// pattern itself.
func publicAccess(pattern string) routeAccess {
	method, path, _ := strings.Cut(pattern, " ")
	if rest, ok := strings.CutPrefix(path, InternalPrefix+"/"); ok {
		pattern = method + " /v1/" + rest
	}
	return routeAccesses[pattern]
}

// checkAccess returns nil when r may reach the route of pattern, else an
// unauthorized (no or a wrong credential) or forbidden (a valid one that
// does not reach this far) error.
func (s *Core) checkAccess(r *http.Request, pattern string) error {
	if err := s.checkPeerCert(r, pattern); err != nil {
		return err
	}
	access := routeAccesses[pattern]
	if access == accessOpen || access == accessPlay {
		return nil
	}
	secret := len(s.cfg.ClusterSecret) > 0
	if !secret && s.auth == nil {
		return nil
	}
	if r.Header.Get(HeaderForwarded) != "" || IsInternalPattern(pattern) {
		access = accessInternal // only nodes forward, or call internal routes
	}
	if key := r.Header.Get(HeaderClusterKey); key != "" && secret {
		if !hmac.Equal([]byte(key), s.cfg.ClusterSecret) {
			return fmt.Errorf("%w: wrong cluster secret in %s", ErrUnauthorized, HeaderClusterKey)
		}
		return nil
	}
	if access == accessInternal {
		if secret {
			return fmt.Errorf("%w: internal endpoint: only nodes of the cluster call it, with the cluster secret in %s", ErrUnauthorized, HeaderClusterKey)
		}
		// Auth on, no secret: the calling node passed its caller's token on.
		if access = publicAccess(pattern); access == accessInternal {
			return nil // session commands and acks: HeaderForwarded only
		}
	}
	tok := Bearer(r)
	if s.auth == nil {
		if access != accessAdmin && access != accessRules && access != accessModerate {
			return nil
		}
		return fmt.Errorf("%w: admin endpoint: send the cluster secret in %s (auth is off: no token opens it)", ErrUnauthorized, HeaderClusterKey)
	}
	if tok == "" {
		return fmt.Errorf("%w: %s", ErrUnauthorized, access.needs())
	}
	id, _, err := s.auth.VerifyIdentity(tok)
	if err != nil {
		return err
	}
	switch {
	case access == accessAdmin && id.Role != fsm.RoleAdmin,
		access == accessModerate && id.Role != fsm.RoleAdmin && id.Role != moderation.Class,
		(access == accessWorld || access == accessRules) && id.Role != fsm.RoleAdmin && id.Role != fsm.RoleServer:
		return fmt.Errorf("%w: the token of %q has role %q: %s", ErrForbidden, id.Player, id.Role, access.needs())
	}
	return nil
}

// needs says what a route of access a needs, with auth on.
func (a routeAccess) needs() string {
	switch a {
	case accessAdmin:
		return fmt.Sprintf("admin endpoint: send the cluster secret in %s or an admin token (claim %q, or %q %q)", HeaderClusterKey, credential.AdminClaim, RoleClaim, fsm.RoleAdmin)
	case accessModerate:
		return fmt.Sprintf("moderation endpoint: send a token of role %q or an admin token, or the cluster secret in %s", moderation.Class, HeaderClusterKey)
	case accessWorld, accessRules:
		return fmt.Sprintf("world creation, rules and player data writes: send a server or admin token (claim %q) or the cluster secret in %s", RoleClaim, HeaderClusterKey)
	}
	return "auth is on: send a token (Authorization: Bearer)"
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
	if s.cfg.Tracer != nil {
		var end func()
		r, end = s.traceRequest(r, pattern, sw)
		defer end()
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
