package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/internal/credential"
	"github.com/gsd-dev/gsd/wire"
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

// HeaderClusterKey carries the cluster secret, node to node and from admin
// tools. It is compared in constant time; send it only over a private
// network or TLS, as anyone who reads it becomes an admin.
const HeaderClusterKey = wire.HeaderClusterKey

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
	if r.Header.Get(HeaderForwarded) != "" || isInternalPattern(pattern) {
		access = accessInternal // only nodes forward, or call internal routes
	}
	if access == accessPublic {
		return nil
	}
	if key := r.Header.Get(HeaderClusterKey); key != "" {
		if !hmac.Equal([]byte(key), s.cfg.ClusterSecret) {
			return fmt.Errorf("%w: wrong cluster secret in %s", errUnauthorized, HeaderClusterKey)
		}
		return nil
	}
	if access == accessInternal {
		return fmt.Errorf("%w: internal endpoint: only nodes of the cluster call it, with the cluster secret in %s", errUnauthorized, HeaderClusterKey)
	}
	tok := bearer(r)
	if tok == "" || s.auth == nil {
		return fmt.Errorf("%w: admin endpoint: send the cluster secret in %s or an admin token (claim %q)", errUnauthorized, HeaderClusterKey, credential.AdminClaim)
	}
	return s.auth.verifyAdmin(tok)
}

// adminClaims are a token's registered claims plus the admin flag (its
// JSON name is credential.AdminClaim).
type adminClaims struct {
	jwt.RegisteredClaims
	Admin bool `json:"gsd_admin"`
}

// verifyAdmin checks a token like a player's and requires its admin claim.
func (a *authenticator) verifyAdmin(raw string) error {
	var claims adminClaims
	if _, err := a.parser.ParseWithClaims(raw, &claims, a.keys); err != nil {
		return fmt.Errorf("%w: %v", errUnauthorized, err)
	}
	if !claims.Admin {
		return fmt.Errorf("%w: admin endpoint: the token of %q has no %q claim", errForbidden, claims.Subject, credential.AdminClaim)
	}
	return nil
}

// setClusterKey marks a node-to-node request with the cluster secret.
func (s *Server) setClusterKey(h http.Header) {
	SetWireVersion(h) // every node-to-node call passes here (version.go)
	if len(s.cfg.ClusterSecret) > 0 {
		h.Set(HeaderClusterKey, string(s.cfg.ClusterSecret))
	}
}

// validClusterSecret checks a secret's length and that it can travel in a
// header; the files the secret comes from are read by the credential
// package, which the admin CLI shares.
var validClusterSecret = credential.ValidClusterSecret

// hmacKey derives a key for one purpose from the cluster secret, so the
// secret itself signs nothing.
func (s *Server) hmacKey(purpose string) []byte {
	m := hmac.New(sha256.New, s.cfg.ClusterSecret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
