package edge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Mutual TLS between nodes (issue 12). With Config.PeerTLS set, this node
// calls other nodes over https presenting its cluster certificate; with
// Config.PeerCert set, a request that only nodes make (an internal route,
// one marked HeaderForwarded, the former internal session and acks
// routes) or a join must arrive on a TLS connection whose client
// certificate PeerCert accepts (internal/tlsconf: signed by the cluster
// CA, naming a node that is a member). The cluster secret, when set, is
// checked as well.
//
// PeerCert may return a node id with its error: the certificate is the
// cluster's but names a node that is not a member. Only a join takes
// that, as a node asks to join before it is a member; every other
// node-only request is refused.

// joinPattern is the route a node asks to join the cluster through: with
// mutual TLS on, only a holder of a certificate of the cluster may.
const joinPattern = "POST /v1/cluster/join"

// checkPeerCert refuses a node-only request whose connection carries no
// certificate of the cluster.
func (s *Core) checkPeerCert(r *http.Request, pattern string) error {
	if s.cfg.PeerCert == nil {
		return nil
	}
	nodeOnly := IsForwarded(r) || IsInternalPattern(pattern) || routeAccesses[pattern] == accessInternal || pattern == joinPattern
	if !nodeOnly {
		return nil
	}
	if id, err := s.cfg.PeerCert(r.TLS); err != nil && (pattern != joinPattern || id == "") {
		return fmt.Errorf("%w: node-to-node endpoint: only nodes of the cluster, with its certificate, call it: %v", ErrUnauthorized, err)
	}
	return nil
}

// CheckJoiner refuses a join, with mutual TLS on, that asks to add a node
// other than the one its certificate names: a node joins as itself. A
// forwarded join was checked by the node that forwarded it (whose own
// certificate this connection carries).
func (s *Core) CheckJoiner(r *http.Request, id string) error {
	if s.cfg.PeerCert == nil || IsForwarded(r) {
		return nil
	}
	cert, err := s.cfg.PeerCert(r.TLS)
	if err != nil && cert == "" { // checkAccess refused it already; kept for direct callers
		return fmt.Errorf("%w: join: %v", ErrUnauthorized, err)
	}
	if cert != id {
		return fmt.Errorf("%w: join: the certificate names node %q, not %q: a node joins as itself", ErrForbidden, cert, id)
	}
	return nil
}

// peerURL is LeaderURL for this node's own calls: an address without a
// scheme is reached over https when the node calls its peers with TLS.
func (s *Core) peerURL(addr string) string {
	if s.cfg.PeerTLS != nil && !strings.Contains(addr, "://") {
		return "https://" + strings.TrimSuffix(addr, "/")
	}
	return LeaderURL(addr)
}

// tlsRefused reports whether err is a failed TLS handshake: this node
// refused the peer's certificate, or the peer refused this node's (an
// alert). The server did not read the request, so it changed nothing.
func tlsRefused(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	_, ok := errors.AsType[tls.AlertError](err)
	return ok
}
