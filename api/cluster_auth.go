package api

import (
	"crypto/hmac"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
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
	"POST /v1/worlds/{world}/sessions/{id}/kick": accessAdmin,
	"GET /v1/worlds/{world}/sessions:export":     accessAdmin,
	"POST /v1/worlds/{world}/sessions:import":    accessAdmin,
	"POST /v1/worlds/{world}/bans":               accessAdmin,
	"DELETE /v1/worlds/{world}/bans/{player}":    accessAdmin,
	"POST /v1/node/drain":                        accessAdmin,
	"DELETE /v1/node/drain":                      accessAdmin,
}

// checkAccess returns nil when r may reach the route of pattern, else an
// unauthorized (no or a wrong credential) or forbidden (a valid one that
// does not reach this far) error.
func (s *Server) checkAccess(r *http.Request, pattern string) error {
	if len(s.cfg.ClusterSecret) == 0 {
		return nil
	}
	access := routeAccesses[pattern]
	if r.Header.Get(edge.HeaderForwarded) != "" || edge.IsInternalPattern(pattern) {
		access = accessInternal // only nodes forward, or call internal routes
	}
	if access == accessPublic {
		return nil
	}
	if key := r.Header.Get(edge.HeaderClusterKey); key != "" {
		if !hmac.Equal([]byte(key), s.cfg.ClusterSecret) {
			return fmt.Errorf("%w: wrong cluster secret in %s", edge.ErrUnauthorized, edge.HeaderClusterKey)
		}
		return nil
	}
	if access == accessInternal {
		return fmt.Errorf("%w: internal endpoint: only nodes of the cluster call it, with the cluster secret in %s", edge.ErrUnauthorized, edge.HeaderClusterKey)
	}
	tok := edge.Bearer(r)
	if tok == "" || s.Auth() == nil {
		return fmt.Errorf("%w: admin endpoint: send the cluster secret in %s or an admin token (claim %q)", edge.ErrUnauthorized, edge.HeaderClusterKey, credential.AdminClaim)
	}
	return s.Auth().VerifyAdmin(tok)
}
