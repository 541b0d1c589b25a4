package edge

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/internal/credential"
	"github.com/gsd-dev/gsd/wire"
)

// HeaderClusterKey carries the cluster secret, node to node and from admin
// tools. It is compared in constant time; send it only over a private
// network or TLS, as anyone who reads it becomes an admin.
const HeaderClusterKey = wire.HeaderClusterKey

// AdminClaims are a token's registered claims plus the admin flag (its
// JSON name is credential.AdminClaim) and the role (RoleClaim).
type AdminClaims struct {
	jwt.RegisteredClaims
	Admin bool   `json:"gsd_admin,omitempty"`
	Role  string `json:"gsd_role,omitempty"`
}

// setClusterKey marks a node-to-node request with the cluster secret.
func (s *Core) SetClusterKey(h http.Header) {
	SetWireVersion(h) // every node-to-node call passes here (version.go)
	if len(s.cfg.ClusterSecret) > 0 {
		h.Set(HeaderClusterKey, string(s.cfg.ClusterSecret))
	}
}

// ValidClusterSecret checks a secret's length and that it can travel in a
// header; the files the secret comes from are read by the credential
// package, which the admin CLI shares.
var ValidClusterSecret = credential.ValidClusterSecret

// hmacKey derives a key for one purpose from the cluster secret, so the
// secret itself signs nothing.
func (s *Core) HMACKey(purpose string) []byte {
	m := hmac.New(sha256.New, s.cfg.ClusterSecret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
