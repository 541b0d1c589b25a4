package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// PeerServerName is the TLS server name a node sends when it calls
// another node's HTTP port, so that a port with a public certificate
// answers a peer with its cluster certificate instead.
const PeerServerName = "peer.gsd.internal"

// ClusterFiles names the files of a node's cluster credentials.
type ClusterFiles struct {
	CA   string // the cluster CA's certificate (PEM)
	Cert string // this node's certificate, signed by the CA
	Key  string // its key
}

// Cluster is a node's mutual-TLS identity in its cluster: the CA bundle
// that every peer's certificate must chain to and this node's own
// certificate, both reloaded when their files change (ca.go, reload.go),
// and the check that a peer is a member (peers.go).
type Cluster struct {
	ca    *caBundle
	cert  *Reloader
	id    string
	log   *slog.Logger
	peers peerCheck
}

// LoadCluster reads f. The node certificate must chain to the CA and name
// a node (gsd://node/<id>). The files are looked at again on a handshake
// at most once per checkEvery (every handshake when <= 0).
func LoadCluster(f ClusterFiles, checkEvery time.Duration, log *slog.Logger) (*Cluster, error) {
	if log == nil {
		log = slog.Default()
	}
	ca, err := newCABundle(f.CA, checkEvery, log)
	if err != nil {
		return nil, err
	}
	cert, err := NewReloader(f.Cert, f.Key, checkEvery, log)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	c := &Cluster{ca: ca, cert: cert, log: log}
	leaf, err := x509.ParseCertificate(cert.Certificate().Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%w: node certificate: %v", ErrBadPEM, err)
	}
	if c.id, err = c.verify(leaf, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, fmt.Errorf("node certificate %s: %w", f.Cert, err)
	}
	return c, nil
}

// ID returns the node id this node's certificate names.
func (c *Cluster) ID() string { return c.id }

// verify checks that leaf (with intermediates) chains to the cluster CA
// for usage and names a node, whose id it returns.
func (c *Cluster) verify(leaf *x509.Certificate, inter []*x509.Certificate, usage x509.ExtKeyUsage) (string, error) {
	pool := x509.NewCertPool()
	for _, ic := range inter {
		pool.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.ca.roots(), Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotClusterPeer, err)
	}
	id, ok := NodeID(leaf)
	if !ok {
		return "", fmt.Errorf("%w: the certificate of %q names no node (URI SAN %s://%s/<id>)", ErrNotClusterPeer, leaf.Subject.CommonName, NodeURIScheme, nodeURIHost)
	}
	return id, nil
}

// verifyRaw is a tls.Config.VerifyPeerCertificate for usage.
func (c *Cluster) verifyRaw(usage x509.ExtKeyUsage) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return fmt.Errorf("%w: no certificate", ErrNotClusterPeer)
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, b := range raw {
			cert, err := x509.ParseCertificate(b)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrNotClusterPeer, err)
			}
			certs[i] = cert
		}
		id, err := c.verify(certs[0], certs[1:], usage)
		if err == nil {
			err = c.admit(id, true)
		}
		if err != nil {
			// The type Go gives its own verification failures, so that
			// callers tell a refused handshake from a lost request.
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
		}
		return nil
	}
}

// ServerConfig is the TLS of a node's Raft listener: it requires a peer
// certificate of the cluster and presents this node's.
func (c *Cluster) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: c.cert.GetCertificate,
		// Verified below by the CA and the node SAN, not by Go's
		// ClientCAs, so that both directions apply the same rule.
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: c.verifyRaw(x509.ExtKeyUsageClientAuth),
	}
}

// ClientConfig is the TLS a node dials its peers with (Raft and HTTP): it
// presents this node's certificate and accepts a server whose certificate
// chains to the cluster CA and names a node, whatever address was dialed
// (hence Go's host name check is off and replaced by VerifyPeerCertificate).
func (c *Cluster) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:            tls.VersionTLS12,
		ServerName:            PeerServerName,
		GetClientCertificate:  c.cert.GetClientCertificate,
		InsecureSkipVerify:    true, //nolint:gosec // verified by VerifyPeerCertificate: CA and node SAN
		VerifyPeerCertificate: c.verifyRaw(x509.ExtKeyUsageServerAuth),
	}
}

// HTTPServerConfig is the TLS of the HTTP/WebSocket port of a node in a
// cluster with mutual TLS: players connect without a certificate and get
// public's (or, when public is nil, this node's cluster certificate);
// a peer, which asks for PeerServerName, gets the cluster certificate and
// sends its own, which must chain to the CA. PeerNode then tells the
// node-to-node routes who called. Each handshake takes the CA bundle as
// it is then (GetConfigForClient), so a running listener follows a
// changed CA file.
func (c *Cluster) HTTPServerConfig(public *Reloader) *tls.Config {
	getCert := func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if public == nil || hello.ServerName == PeerServerName {
			return c.cert.Certificate(), nil
		}
		return public.Certificate(), nil
	}
	build := func(roots *x509.CertPool) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert,
			ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: roots}
	}
	var last atomic.Pointer[tls.Config] // built for the newest roots
	cfg := build(c.ca.roots())
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		roots := c.ca.roots()
		if l := last.Load(); l != nil && l.ClientCAs == roots {
			return l, nil
		}
		l := build(roots)
		last.Store(l)
		return l, nil
	}
	return cfg
}

// PeerNode returns the node id of the peer on a connection served with
// HTTPServerConfig, or an error wrapping ErrNotClusterPeer when the peer
// sent no certificate of the cluster. A certificate of the cluster whose
// node the peer check refuses gives its id and an error wrapping
// ErrNotMember: a node that asks to join is not a member yet.
func (c *Cluster) PeerNode(cs *tls.ConnectionState) (string, error) {
	if cs == nil {
		return "", fmt.Errorf("%w: not a TLS connection", ErrNotClusterPeer)
	}
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("%w: no client certificate of the cluster CA", ErrNotClusterPeer)
	}
	// VerifiedChains only holds chains to ClientCAs: the cluster CA.
	leaf := cs.VerifiedChains[0][0]
	id, ok := NodeID(leaf)
	if !ok {
		return "", fmt.Errorf("%w: the client certificate names no node", ErrNotClusterPeer)
	}
	return id, c.admit(id, false)
}
