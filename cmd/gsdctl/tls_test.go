package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/tlsconf"
	"github.com/stretchr/testify/require"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return c
}

func TestTLSMintsACAAndNodeCertificatesItSigns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	out := mustRun(t, "tls", "ca", "--dir", dir)
	require.Contains(t, out, filepath.Join(dir, "ca.key"))
	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	require.True(t, ca.IsCA)
	fi, err := os.Stat(filepath.Join(dir, "ca.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "keys are private")

	mustRun(t, "tls", "node", "--dir", dir, "--id", "n1", "--host", "127.0.0.1,localhost", "--valid", "48h")
	leaf := readCert(t, filepath.Join(dir, "n1.crt"))
	id, ok := tlsconf.NodeID(leaf)
	require.True(t, ok)
	require.Equal(t, "n1", id)
	require.Equal(t, []string{"localhost"}, leaf.DNSNames)
	require.WithinDuration(t, time.Now().Add(48*time.Hour), leaf.NotAfter, time.Hour)
	c, err := tlsconf.LoadCluster(tlsconf.ClusterFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "n1.crt"), Key: filepath.Join(dir, "n1.key")}, 0, nil)
	require.NoError(t, err, "the node certificate chains to the CA")
	require.Equal(t, "n1", c.ID())

	// Nothing is overwritten by mistake.
	code, _, errOut := ctl(t, "", "tls", "ca", "--dir", dir)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "exists (--force overwrites it)")
	code, _, errOut = ctl(t, "", "tls", "node", "--dir", dir, "--id", "n1")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "exists")
	mustRun(t, "tls", "node", "--dir", dir, "--id", "n1", "--force")
	require.NotEqual(t, leaf.SerialNumber, readCert(t, filepath.Join(dir, "n1.crt")).SerialNumber)
}

func TestTLSRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tls", "node", "--dir", dir, "--id", "n1"}, "gsdctl tls ca first"},
		{[]string{"tls", "ca", "--dir", dir, "--valid", "0s"}, "positive validity"},
		{[]string{"tls", "ca", "--dir", dir, "--name", ""}, "needs a name"},
		{[]string{"--tls-cert", "x", "status"}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-cert", "x", "--tls-key", "y", "status"}, "needs --tls-ca"},
		{[]string{"--tls-ca", filepath.Join(dir, "none"), "status"}, "--tls-ca"},
		{[]string{"--tls-ca", writeTemp(t, "junk"), "status"}, "no PEM certificate"},
		{[]string{"--tls-ca", writeTemp(t, "junk"), "--tls-cert", writeTemp(t, "junk"), "--tls-key", writeTemp(t, "junk"), "status"}, "bad PEM"},
	} {
		code, _, errOut := ctl(t, "", tc.args...)
		require.Equal(t, 1, code, "%v", tc.args)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
	mustRun(t, "tls", "ca", "--dir", dir)
	code, _, errOut := ctl(t, "", "tls", "node", "--dir", dir, "--id", "a/b")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "without '/'")
}

func writeTemp(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

// gsdctl reaches an https node with --tls-ca, and with a certificate of
// the cluster presents it.
func TestCtlTalksToATLSNodeWithTheCA(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "tls", "ca", "--dir", dir)
	mustRun(t, "tls", "node", "--dir", dir, "--id", "n1", "--host", "127.0.0.1")
	mustRun(t, "tls", "node", "--dir", dir, "--id", "ops") // any certificate of the cluster
	c, err := tlsconf.LoadCluster(tlsconf.ClusterFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "n1.crt"), Key: filepath.Join(dir, "n1.key")}, 0, nil)
	require.NoError(t, err)
	peers := make(chan string, 8)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, err := c.PeerNode(r.TLS); err == nil {
			peers <- id
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"n1","leader":"n1","leader_http":"127.0.0.1:1","servers":[],"nodes":[]}`))
	}))
	srv.Listener = tls.NewListener(srv.Listener, c.HTTPServerConfig(nil))
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().(*net.TCPAddr).String()

	out := mustRun(t, "--addr", addr, "--tls-ca", filepath.Join(dir, "ca.crt"), "status")
	require.Contains(t, out, "n1")
	require.Empty(t, peers, "no certificate presented")
	code, _, errOut := ctl(t, "", "--addr", addr, "--timeout", "2s", "status")
	require.Equal(t, 1, code, "plain HTTP to a TLS port")
	require.NotEmpty(t, errOut)

	mustRun(t, "--addr", addr, "--tls-ca", filepath.Join(dir, "ca.crt"), "--tls-cert", filepath.Join(dir, "ops.crt"), "--tls-key", filepath.Join(dir, "ops.key"), "status")
	require.Equal(t, "ops", <-peers)
}
