package tlsconf

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer serves cfg on loopback: each connection echoes lines until
// closed. It returns the address.
func echoServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// echo sends a line on c and reads it back.
func echo(t *testing.T, c *tls.Conn) error {
	t.Helper()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

// dialNode dials addr as cluster c and returns the connection after a
// round trip (TLS 1.3: the server's verdict on the client's certificate
// comes after the client's handshake).
func dialNode(t *testing.T, addr string, c *Cluster) (*tls.Conn, error) {
	t.Helper()
	d := tls.Dialer{Config: c.ClientConfig()}
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := conn.(*tls.Conn)
	if err := echo(t, tc); err != nil {
		tc.Close()
		return nil, err
	}
	t.Cleanup(func() { tc.Close() })
	return tc, nil
}

// touch moves a file's modification time on, so that a rewrite of the
// same size is seen.
func touch(t *testing.T, files ...string) {
	t.Helper()
	later := time.Now().Add(time.Minute)
	for _, f := range files {
		require.NoError(t, os.Chtimes(f, later, later))
	}
}

// Swapping a running node's certificate and CA files: new handshakes use
// the new certificate and trust the new bundle, connections made before
// stay up, and a bundle without the old CA refuses its certificates on
// new connections.
func TestClusterFollowsItsSwappedCertificateAndCAFilesOnNewHandshakes(t *testing.T) {
	ca1, ca2 := newCA(t), newCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(caFile, ca1.Cert, 0o600))
	p1, err := IssueNode(ca1, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	cert, key := write(t, dir, "n1", p1)
	n1, err := LoadCluster(ClusterFiles{CA: caFile, Cert: cert, Key: key}, 0, quiet)
	require.NoError(t, err)
	addr := echoServer(t, n1.ServerConfig())

	old := loadNode(t, ca1, "n2")
	before, err := dialNode(t, addr, old)
	require.NoError(t, err)
	firstSerial := before.ConnectionState().PeerCertificates[0].SerialNumber.String()

	// A node of the new CA, which trusts both, is refused until n1's
	// bundle holds the new CA.
	both := append(append([]byte(nil), ca1.Cert...), ca2.Cert...)
	newer := loadNodeTrusting(t, ca2, "n3", both)
	_, err = dialNode(t, addr, newer)
	require.Error(t, err)

	p2, err := IssueNode(ca2, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	write(t, dir, "n1", p2)
	require.NoError(t, os.WriteFile(caFile, both, 0o600))
	touch(t, cert, key, caFile)
	after, err := dialNode(t, addr, newer)
	require.NoError(t, err, "the new bundle trusts n3, and n3 trusts n1's new certificate")
	require.NotEqual(t, firstSerial, after.ConnectionState().PeerCertificates[0].SerialNumber.String())
	require.NoError(t, echo(t, before), "a connection made before the swap stays")

	// The old CA dropped: its certificates are refused on new connections.
	require.NoError(t, os.WriteFile(caFile, ca2.Cert, 0o600))
	touch(t, caFile)
	_, err = dialNode(t, addr, loadNodeTrusting(t, ca1, "n4", both))
	require.Error(t, err)
	require.NoError(t, echo(t, before))
}

// A CA file that changes to something unreadable or goes away keeps the
// loaded bundle.
func TestCABundleKeepsTheLoadedOneWhenTheFileIsBrokenOrGone(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(caFile, ca.Cert, 0o600))
	b, err := newCABundle(caFile, 0, quiet)
	require.NoError(t, err)
	pool := b.roots()
	require.Same(t, pool, b.roots(), "unchanged: the same pool")
	require.NoError(t, os.WriteFile(caFile, []byte("half written"), 0o600))
	touch(t, caFile)
	require.Same(t, pool, b.roots())
	require.NoError(t, os.Remove(caFile))
	require.Same(t, pool, b.roots())

	// Looked at once per interval at most.
	require.NoError(t, os.WriteFile(caFile, ca.Cert, 0o600))
	slow, err := newCABundle(caFile, time.Hour, quiet)
	require.NoError(t, err)
	p := slow.roots()
	require.NoError(t, os.WriteFile(caFile, append(append([]byte(nil), ca.Cert...), newCA(t).Cert...), 0o600))
	touch(t, caFile)
	require.Same(t, p, slow.roots())
}

// The HTTP port's listener takes a changed CA bundle on its next
// handshake too (GetConfigForClient).
func TestHTTPServerConfigTakesTheNewCABundle(t *testing.T) {
	ca1, ca2 := newCA(t), newCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(caFile, ca1.Cert, 0o600))
	p1, err := IssueNode(ca1, NodeCert{ID: "n1", Validity: time.Hour})
	require.NoError(t, err)
	cert, key := write(t, dir, "n1", p1)
	n1, err := LoadCluster(ClusterFiles{CA: caFile, Cert: cert, Key: key}, 0, quiet)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := n1.PeerNode(r.TLS)
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
		}
		io.WriteString(w, id)
	}))
	cfg := n1.HTTPServerConfig(nil)
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Start()
	defer srv.Close()
	both := append(append([]byte(nil), ca1.Cert...), ca2.Cert...)
	n3 := loadNodeTrusting(t, ca2, "n3", both)
	get := func() (int, string, error) {
		tr := &http.Transport{TLSClientConfig: n3.ClientConfig()}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + srv.Listener.Addr().String())
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	_, _, err = get()
	require.Error(t, err, "n3's certificate is of a CA n1 does not trust yet")

	require.NoError(t, os.WriteFile(caFile, both, 0o600))
	touch(t, caFile)
	code, id, err := get()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "n3", id)
	a, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	b, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	require.Same(t, a, b, "one config per bundle")
}

// loadNodeTrusting loads node id's credentials from ca with bundle as
// its CA file.
func loadNodeTrusting(t *testing.T, ca PEMPair, id string, bundle []byte) *Cluster {
	t.Helper()
	dir := t.TempDir()
	node, err := IssueNode(ca, NodeCert{ID: id, Validity: time.Hour})
	require.NoError(t, err)
	caFile := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(caFile, bundle, 0o600))
	cert, key := write(t, dir, id, node)
	c, err := LoadCluster(ClusterFiles{CA: caFile, Cert: cert, Key: key}, 0, quiet)
	require.NoError(t, err)
	return c
}
