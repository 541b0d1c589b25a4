package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/tlsconf"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// tlsNode is a node's cluster credentials, minted for the test.
func tlsNode(t *testing.T, ca tlsconf.PEMPair, id string) *tlsconf.Cluster {
	t.Helper()
	p, err := tlsconf.IssueNode(ca, tlsconf.NodeCert{ID: id, Validity: time.Hour})
	require.NoError(t, err)
	dir := t.TempDir()
	f := tlsconf.ClusterFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "n.crt"), Key: filepath.Join(dir, "n.key")}
	require.NoError(t, os.WriteFile(f.CA, ca.Cert, 0o600))
	require.NoError(t, os.WriteFile(f.Cert, p.Cert, 0o600))
	require.NoError(t, os.WriteFile(f.Key, p.Key, 0o600))
	c, err := tlsconf.LoadCluster(f, 0, nil)
	require.NoError(t, err)
	return c
}

// withClusterTLS turns the cluster's mutual TLS on in the edge's config.
func withClusterTLS(c *tlsconf.Cluster) func(*Config) {
	return func(cfg *Config) {
		cfg.PeerTLS = c.ClientConfig()
		cfg.PeerCert = c.PeerNode
	}
}

// serveTLS serves b through a Server on an https port with c's
// HTTPServerConfig, as gsd does with --cluster-cert, and returns its URL.
func serveTLS(t *testing.T, b edge.Backend, c *tlsconf.Cluster, opts ...func(*Config)) (*Server, string) {
	t.Helper()
	cfg := testConfig()
	for _, o := range append(opts, withClusterTLS(c)) {
		o(&cfg)
	}
	s, err := New(cfg, b, edge.NewSingleGroupRouter(b.(edge.LeaderGroup)), nil)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Listener = tls.NewListener(ts.Listener, c.HTTPServerConfig(nil))
	ts.Start()
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts.Listener.Addr().String()
}

// caClient trusts ca and presents cert (none when nil).
func caClient(ca tlsconf.PEMPair, cert *tlsconf.Cluster) *http.Client {
	if cert != nil {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cert.ClientConfig()}}
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.Cert)
	// The node certificates name no host: a player that trusts the CA
	// checks the chain only (a real deployment names its hosts or sets a
	// public certificate).
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, InsecureSkipVerify: true, //nolint:gosec // chain checked below
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots})
			return err
		},
	}}}
}

func call(t *testing.T, hc *http.Client, method, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNodeOnlyRoutesNeedTheClusterCertificate: with mutual TLS on, an
// internal route, a forwarded request and a join are refused to a caller
// without a certificate of the cluster, even one holding the cluster
// secret; a node of the cluster reaches them; players' routes are as
// before.
func TestNodeOnlyRoutesNeedTheClusterCertificate(t *testing.T) {
	ca := newCATest(t)
	f := apitest.NewFake()
	require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	_, addr := serveTLS(t, f, tlsNode(t, ca, "n1"), withSecret)
	base := "https://" + addr
	node := caClient(ca, tlsNode(t, ca, "n2"))
	foreignCA := newCATest(t)
	intruder := caClient(ca, tlsNode(t, foreignCA, "n2")) // a certificate of another CA
	anon := caClient(ca, nil)
	join := `{"id":"n2","raft_addr":"127.0.0.1:1","http_addr":"127.0.0.1:2"}`

	for _, tc := range []struct {
		name, method, path, body string
		hdr                      []string
	}{
		{"internal route", "GET", edge.InternalEntityPath("arena", "e1"), "", nil},
		{"forwarded action", "POST", "/v1/worlds/arena/actions", incrBody, []string{edge.HeaderForwarded, "1"}},
		{"former internal route", "POST", "/v1/sessions:acks", `{}`, nil},
		{"join", "POST", "/v1/cluster/join", join, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := append([]string{edge.HeaderClusterKey, testSecret}, tc.hdr...)
			code, b := call(t, anon, tc.method, base+tc.path, tc.body, hdr...)
			require.Equal(t, http.StatusUnauthorized, code, b)
			require.Contains(t, b, "node-to-node")
			code, b = call(t, node, tc.method, base+tc.path, tc.body, hdr...)
			require.NotEqual(t, http.StatusUnauthorized, code, b)
		})
	}
	_, err := intruder.Get(base + edge.InternalEntityPath("arena", "e1"))
	require.Error(t, err, "a foreign CA's client certificate fails the handshake")

	code, b := call(t, anon, "POST", base+"/v1/worlds/arena/actions", incrBody)
	require.Equal(t, http.StatusOK, code, "players need no certificate: %s", b)

	// A node joins as itself: n2's certificate cannot add n9.
	code, b = call(t, node, "POST", base+"/v1/cluster/join", `{"id":"n9","raft_addr":"127.0.0.1:1"}`, edge.HeaderClusterKey, testSecret)
	require.Equal(t, http.StatusForbidden, code, b)
	require.Contains(t, b, "joins as itself")
}

// A join through a follower is checked there, against the joiner's
// certificate, and forwarded to the leader with the follower's.
func TestJoinThroughAFollowerIsCheckedWhereItArrives(t *testing.T) {
	ca := newCATest(t)
	lf := apitest.NewFake()
	_, leaderAddr := serveTLS(t, lf, tlsNode(t, ca, "n1"))
	ff := apitest.NewFake()
	ff.LeaderFlag.Store(false)
	ff.JoinErr = store.ErrNotLeader
	ff.SetLeader("n1", leaderAddr)
	_, followerAddr := serveTLS(t, ff, tlsNode(t, ca, "n2"))
	n3 := caClient(ca, tlsNode(t, ca, "n3"))

	code, b := call(t, n3, "POST", "https://"+followerAddr+"/v1/cluster/join", `{"id":"n3","raft_addr":"127.0.0.1:1"}`)
	require.Equal(t, http.StatusOK, code, b)
	code, b = call(t, n3, "POST", "https://"+followerAddr+"/v1/cluster/join", `{"id":"n4","raft_addr":"127.0.0.1:1"}`)
	require.Equal(t, http.StatusForbidden, code, b)
}

func TestCheckJoinerWithoutACertificate(t *testing.T) {
	ca := newCATest(t)
	f := apitest.NewFake()
	s, _ := serveTLS(t, f, tlsNode(t, ca, "n1"))
	r := httptest.NewRequest("POST", "/v1/cluster/join", nil)
	require.ErrorIs(t, s.CheckJoiner(r, "n1"), edge.ErrUnauthorized)
}

// TestFollowerForwardsOverMutualTLS: a follower reaches its leader over
// https with its cluster certificate, although the node table holds the
// leader's address without a scheme.
func TestFollowerForwardsOverMutualTLS(t *testing.T) {
	ca := newCATest(t)
	lf := apitest.NewFake()
	require.NoError(t, lf.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	_, leaderAddr := serveTLS(t, lf, tlsNode(t, ca, "n1"))
	ff := apitest.NewFake()
	ff.LeaderFlag.Store(false)
	ff.ActErr = store.ErrNotLeader
	ff.SetLeader("n1", leaderAddr)
	_, followerAddr := serveTLS(t, ff, tlsNode(t, ca, "n2"))

	code, b := call(t, caClient(ca, nil), "POST", "https://"+followerAddr+"/v1/worlds/arena/actions", incrBody)
	require.Equal(t, http.StatusOK, code, b)
	require.Contains(t, b, `"status":"applied"`)
	require.Equal(t, 1, lf.Acts)
}

// A follower whose certificate is of another CA is refused by the leader:
// its forwarded write never left (dial/handshake), so it is not_leader.
func TestFollowerWithAForeignCertificateCannotForward(t *testing.T) {
	ca := newCATest(t)
	lf := apitest.NewFake()
	require.NoError(t, lf.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	_, leaderAddr := serveTLS(t, lf, tlsNode(t, ca, "n1"))
	ff := apitest.NewFake()
	ff.LeaderFlag.Store(false)
	ff.ActErr = store.ErrNotLeader
	ff.SetLeader("n1", leaderAddr)
	other := newCATest(t)
	_, followerAddr := serveTLS(t, ff, tlsNode(t, other, "n2"))

	code, b := call(t, caClient(other, nil), "POST", "https://"+followerAddr+"/v1/worlds/arena/actions", incrBody)
	require.Equal(t, http.StatusServiceUnavailable, code, b)
	require.Contains(t, b, edge.CodeNotLeader)
	require.Zero(t, lf.Acts)
}

func newCATest(t *testing.T) tlsconf.PEMPair {
	t.Helper()
	ca, err := tlsconf.NewCA("test", time.Hour)
	require.NoError(t, err)
	return ca
}
