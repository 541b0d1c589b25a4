package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// write puts p in dir as name.crt and name.key and returns their paths.
func write(t *testing.T, dir, name string, p PEMPair) (string, string) {
	t.Helper()
	c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(c, p.Cert, 0o600))
	require.NoError(t, os.WriteFile(k, p.Key, 0o600))
	return c, k
}

// cluster mints a CA and returns its pair and a loader of node ids' credentials.
func newCA(t *testing.T) PEMPair {
	t.Helper()
	ca, err := NewCA("test cluster", time.Hour)
	require.NoError(t, err)
	return ca
}

func loadNode(t *testing.T, ca PEMPair, id string) *Cluster {
	t.Helper()
	dir := t.TempDir()
	node, err := IssueNode(ca, NodeCert{ID: id, Validity: time.Hour})
	require.NoError(t, err)
	caFile, _ := write(t, dir, "ca", PEMPair{Cert: ca.Cert, Key: ca.Key})
	cert, key := write(t, dir, id, node)
	c, err := LoadCluster(ClusterFiles{CA: caFile, Cert: cert, Key: key}, 0, quiet)
	require.NoError(t, err)
	require.Equal(t, id, c.ID())
	return c
}

// handshake runs a TLS handshake over a loopback pair and returns the
// client's and the server's errors.
func handshake(t *testing.T, server, client *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, server)
		err = s.HandshakeContext(context.Background())
		if err == nil {
			// TLS 1.3: the client's certificate is checked after the
			// client's handshake returns; read to see the result.
			_, err = s.Read(make([]byte, 1))
		}
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	c := tls.Client(raw, client)
	clientErr = c.HandshakeContext(context.Background())
	if clientErr == nil {
		_, clientErr = c.Write([]byte{1})
		if clientErr == nil {
			// The server's verdict on our certificate arrives as an alert.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, rerr := c.Read(make([]byte, 1))
			if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, os.ErrDeadlineExceeded) {
				clientErr = rerr
			}
		}
	}
	c.Close()
	return clientErr, <-done
}

func TestNodesOfOneClusterHandshakeWhateverAddressIsDialed(t *testing.T) {
	ca := newCA(t)
	n1, n2 := loadNode(t, ca, "n1"), loadNode(t, ca, "n2")
	// The certificates carry no IP SAN: 127.0.0.1 is not what is checked.
	cerr, serr := handshake(t, n1.ServerConfig(), n2.ClientConfig())
	require.NoError(t, cerr)
	require.True(t, serr == nil || errors.Is(serr, io.EOF), "server: %v", serr)
}

func TestPeerOfAnotherClusterIsRefusedBothWays(t *testing.T) {
	n1 := loadNode(t, newCA(t), "n1")
	x := loadNode(t, newCA(t), "x")
	// x dialing n1: x's certificate is refused by n1 (x is made to
	// accept any server, as an attacker would).
	xc := x.ClientConfig()
	xc.VerifyPeerCertificate = nil
	_, serr := handshake(t, n1.ServerConfig(), xc)
	require.ErrorIs(t, serr, ErrNotClusterPeer)
	// n1 dialing x: n1 refuses x's server certificate.
	cerr, _ := handshake(t, x.ServerConfig(), n1.ClientConfig())
	require.ErrorIs(t, cerr, ErrNotClusterPeer)
}

func TestPeerWithoutCertificateIsRefused(t *testing.T) {
	n1 := loadNode(t, newCA(t), "n1")
	_, serr := handshake(t, n1.ServerConfig(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the attacker's side
	require.Error(t, serr)
	require.Contains(t, serr.Error(), "certificate")
}

func TestCertificateOfTheCAWithoutNodeNameIsRefused(t *testing.T) {
	ca := newCA(t)
	caCert, caKey, err := parsePair(ca)
	require.NoError(t, err)
	p, err := mint(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "no-san"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, time.Hour, caCert, caKey)
	require.NoError(t, err)
	dir := t.TempDir()
	caFile, _ := write(t, dir, "ca", ca)
	cert, key := write(t, dir, "nosan", p)
	_, err = LoadCluster(ClusterFiles{CA: caFile, Cert: cert, Key: key}, 0, quiet)
	require.ErrorIs(t, err, ErrNotClusterPeer)

	n1 := loadNode(t, ca, "n1")
	pair, err := tls.X509KeyPair(p.Cert, p.Key)
	require.NoError(t, err)
	_, serr := handshake(t, n1.ServerConfig(), &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true}) //nolint:gosec // attacker
	require.ErrorIs(t, serr, ErrNotClusterPeer)
	require.ErrorContains(t, serr, "names no node")
}

func TestNodeIDReadsOnlyWellFormedNodeURIs(t *testing.T) {
	for _, tc := range []struct {
		uri string
		id  string
		ok  bool
	}{
		{"gsd://node/n1", "n1", true},
		{"gsd://node/", "", false},
		{"gsd://node/a/b", "", false},
		{"gsd://other/n1", "", false},
		{"spiffe://node/n1", "", false},
	} {
		u, err := NodeURI("x").Parse(tc.uri)
		require.NoError(t, err)
		id, ok := NodeID(&x509.Certificate{URIs: []*url.URL{u}})
		require.Equal(t, tc.ok, ok, tc.uri)
		require.Equal(t, tc.id, id, tc.uri)
	}
}

func TestMintRejectsBadInput(t *testing.T) {
	_, err := NewCA("", time.Hour)
	require.Error(t, err)
	_, err = NewCA("ca", 0)
	require.Error(t, err)
	ca := newCA(t)
	for _, id := range []string{"", "a/b", "a b"} {
		_, err = IssueNode(ca, NodeCert{ID: id, Validity: time.Hour})
		require.Error(t, err, id)
	}
	_, err = IssueNode(ca, NodeCert{ID: "n1"})
	require.Error(t, err)
	_, err = IssueNode(PEMPair{Cert: []byte("junk"), Key: ca.Key}, NodeCert{ID: "n1", Validity: time.Hour})
	require.ErrorIs(t, err, ErrBadPEM)
	node, err := IssueNode(ca, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	_, err = IssueNode(node, NodeCert{ID: "n2", Validity: time.Hour}) // a node is no CA
	require.ErrorIs(t, err, ErrBadPEM)
	_, err = IssueNode(PEMPair{Cert: ca.Cert}, NodeCert{ID: "n2", Validity: time.Hour})
	require.ErrorIs(t, err, ErrBadPEM)
}

func TestIssueNodeAddsHostsAsDNSAndIPNames(t *testing.T) {
	p, err := IssueNode(newCA(t), NodeCert{ID: "n1", Hosts: []string{"localhost", " 127.0.0.1", ""}, Validity: time.Hour})
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(p.Cert, p.Key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	require.Equal(t, []string{"localhost"}, leaf.DNSNames)
	require.Len(t, leaf.IPAddresses, 1)
	require.True(t, leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))
}

func TestLoadClusterRejectsBadFiles(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	caFile, _ := write(t, dir, "ca", ca)
	node, err := IssueNode(ca, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	cert, key := write(t, dir, "n1", node)
	junk := filepath.Join(dir, "junk")
	require.NoError(t, os.WriteFile(junk, []byte("junk"), 0o600))

	_, err = LoadCluster(ClusterFiles{CA: filepath.Join(dir, "none"), Cert: cert, Key: key}, 0, quiet)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = LoadCluster(ClusterFiles{CA: junk, Cert: cert, Key: key}, 0, quiet)
	require.ErrorIs(t, err, ErrBadPEM)
	_, err = LoadCluster(ClusterFiles{CA: caFile, Cert: junk, Key: key}, 0, quiet)
	require.ErrorIs(t, err, ErrBadPEM)
	_, err = LoadCluster(ClusterFiles{CA: caFile, Cert: cert}, 0, quiet)
	require.ErrorIs(t, err, ErrBadPEM)
	// A node certificate of another CA.
	other, err := IssueNode(newCA(t), NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	ocert, okey := write(t, dir, "other", other)
	_, err = LoadCluster(ClusterFiles{CA: caFile, Cert: ocert, Key: okey}, 0, quiet)
	require.ErrorIs(t, err, ErrNotClusterPeer)
}

func serial(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	require.NoError(t, err)
	return leaf.SerialNumber.String()
}

func TestReloaderServesTheNewPairOnceItsFilesChange(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	first, err := IssueNode(ca, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	cert, key := write(t, dir, "n1", first)
	r, err := NewReloader(cert, key, 0, nil)
	require.NoError(t, err)
	before := serial(t, r.Certificate())

	second, err := IssueNode(ca, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	write(t, dir, "n1", second)
	// Same size is possible: move the modification time on explicitly.
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(cert, later, later))
	got, err := r.GetCertificate(nil)
	require.NoError(t, err)
	require.NotEqual(t, before, serial(t, got))
	gotc, err := r.GetClientCertificate(nil)
	require.NoError(t, err)
	require.Equal(t, serial(t, got), serial(t, gotc))
}

func TestReloaderKeepsTheLoadedPairWhenTheNewOneIsBrokenOrGone(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	p, err := IssueNode(ca, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	cert, key := write(t, dir, "n1", p)
	r, err := NewReloader(cert, key, 0, quiet)
	require.NoError(t, err)
	want := serial(t, r.Certificate())

	require.NoError(t, os.WriteFile(key, []byte("half written"), 0o600))
	require.Equal(t, want, serial(t, r.Certificate()))
	require.NoError(t, os.Remove(key))
	require.Equal(t, want, serial(t, r.Certificate()))
}

func TestReloaderLooksAtItsFilesAtMostOncePerInterval(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	p, err := IssueNode(ca, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	cert, key := write(t, dir, "n1", p)
	r, err := NewReloader(cert, key, time.Hour, quiet)
	require.NoError(t, err)
	want := serial(t, r.Certificate())
	q, err := IssueNode(ca, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	write(t, dir, "n1", q)
	require.Equal(t, want, serial(t, r.Certificate()))
}

func TestNewReloaderNeedsBothFiles(t *testing.T) {
	_, err := NewReloader("", "k", 0, quiet)
	require.ErrorIs(t, err, ErrBadPEM)
	_, err = NewReloader(filepath.Join(t.TempDir(), "c"), filepath.Join(t.TempDir(), "k"), 0, quiet)
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestHTTPPortTellsPeersFromPlayers: on one HTTP port, a player gets the
// public certificate and no node identity; a peer gets the cluster
// certificate and is named by PeerNode.
func TestHTTPPortTellsPeersFromPlayers(t *testing.T) {
	ca := newCA(t)
	n1, n2 := loadNode(t, ca, "n1"), loadNode(t, ca, "n2")
	pubCA := newCA(t)
	pub, err := IssueNode(pubCA, NodeCert{ID: "public", Hosts: []string{"127.0.0.1"}, Validity: time.Hour})
	require.NoError(t, err)
	pc, pk := write(t, t.TempDir(), "pub", pub)
	public, err := NewReloader(pc, pk, 0, quiet)
	require.NoError(t, err)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := n1.PeerNode(r.TLS)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, id)
	}))
	// httptest's StartTLS would add its own certificate, which Go serves
	// to clients that send no server name; gsd's listener has none.
	srv.Listener = tls.NewListener(srv.Listener, n1.HTTPServerConfig(public))
	srv.Start()
	defer srv.Close()
	url := "https://" + srv.Listener.Addr().String()

	peer := &http.Client{Transport: &http.Transport{TLSClientConfig: n2.ClientConfig()}}
	resp, err := peer.Get(url)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "n2", string(b))

	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(pubCA.Cert))
	player := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err = player.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// A player trusting only the cluster CA does not get the cluster
	// certificate: the public one is served.
	croots := x509.NewCertPool()
	croots.AppendCertsFromPEM(ca.Cert)
	_, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: croots}}}).Get(url)
	require.Error(t, err)
}

func TestPeerNodeWithoutTLSOrChainsIsRefused(t *testing.T) {
	n1 := loadNode(t, newCA(t), "n1")
	_, err := n1.PeerNode(nil)
	require.ErrorIs(t, err, ErrNotClusterPeer)
	_, err = n1.PeerNode(&tls.ConnectionState{})
	require.ErrorIs(t, err, ErrNotClusterPeer)
	_, err = n1.PeerNode(&tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}})
	require.ErrorIs(t, err, ErrNotClusterPeer)
}

func TestPublicServerConfigNeedsTLS12(t *testing.T) {
	p, err := IssueNode(newCA(t), NodeCert{ID: "pub", Validity: time.Hour})
	require.NoError(t, err)
	c, k := write(t, t.TempDir(), "pub", p)
	r, err := NewReloader(c, k, 0, quiet)
	require.NoError(t, err)
	cfg := PublicServerConfig(r)
	_, cerr := handshake(t, cfg, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}) //nolint:gosec // old client
	require.Error(t, cerr)
	cerr, _ = handshake(t, cfg, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // any server
	require.NoError(t, cerr)
}
