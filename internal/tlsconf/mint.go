package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// NodeURIScheme and nodeURIHost make a node's URI SAN: gsd://node/<id>.
const (
	NodeURIScheme = "gsd"
	nodeURIHost   = "node"
)

// NodeURI returns the URI SAN that names node id.
func NodeURI(id string) *url.URL {
	return &url.URL{Scheme: NodeURIScheme, Host: nodeURIHost, Path: "/" + id}
}

// NodeID returns the node id a certificate names in its URI SAN, if any.
func NodeID(cert *x509.Certificate) (string, bool) {
	for _, u := range cert.URIs {
		if u.Scheme == NodeURIScheme && u.Host == nodeURIHost {
			if id := strings.TrimPrefix(u.Path, "/"); id != "" && !strings.Contains(id, "/") {
				return id, true
			}
		}
	}
	return "", false
}

// PEMPair is a certificate and its private key, PEM-encoded.
type PEMPair struct {
	Cert, Key []byte
}

// NewCA mints a self-signed CA (ECDSA P-256) named name, valid for
// validity from now.
func NewCA(name string, validity time.Duration) (PEMPair, error) {
	if name == "" || validity <= 0 {
		return PEMPair{}, errors.New("a CA needs a name and a positive validity")
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"gsd"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	return mint(tmpl, validity, nil, nil)
}

// NodeCert describes a node certificate to issue.
type NodeCert struct {
	ID string // the node id, in the URI SAN gsd://node/<id>
	// Hosts are extra DNS names and IP addresses, for clients that verify
	// the HTTP port by name (gsdctl, players when no public certificate
	// is set). Peers never do: they verify the node id.
	Hosts    []string
	Validity time.Duration
}

// IssueNode signs a node certificate (ECDSA P-256; server and client
// auth) with ca.
func IssueNode(ca PEMPair, n NodeCert) (PEMPair, error) {
	if n.ID == "" || strings.ContainsAny(n.ID, "/ ") {
		return PEMPair{}, fmt.Errorf("node id %q: must be non-empty, without '/' or spaces", n.ID)
	}
	if n.Validity <= 0 {
		return PEMPair{}, errors.New("a node certificate needs a positive validity")
	}
	caCert, caKey, err := parsePair(ca)
	if err != nil {
		return PEMPair{}, fmt.Errorf("CA: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: n.ID, Organization: []string{"gsd"}},
		URIs:        []*url.URL{NodeURI(n.ID)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range n.Hosts {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return mint(tmpl, n.Validity, caCert, caKey)
}

// mint fills tmpl's serial and validity, makes a key and signs it with
// parent (self-signed when nil).
func mint(tmpl *x509.Certificate, validity time.Duration, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (PEMPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEMPair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return PEMPair{}, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-5 * time.Minute) // clock skew between machines
	tmpl.NotAfter = now.Add(validity)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return PEMPair{}, fmt.Errorf("sign certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return PEMPair{}, err
	}
	return PEMPair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
	}, nil
}

// parsePair decodes a CA's certificate and ECDSA key.
func parsePair(p PEMPair) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(p.Cert)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%w: no certificate", ErrBadPEM)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadPEM, err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%w: the certificate is not a CA", ErrBadPEM)
	}
	kb, _ := pem.Decode(p.Key)
	if kb == nil {
		return nil, nil, fmt.Errorf("%w: no private key", ErrBadPEM)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadPEM, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the CA key is not ECDSA", ErrBadPEM)
	}
	return cert, key, nil
}
