package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/tlsconf"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// testCA is a cluster CA minted for a test, with its node certificates in
// a temp dir.
type testCA struct {
	dir string
	ca  tlsconf.PEMPair
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, err := tlsconf.NewCA("gsd test", time.Hour)
	require.NoError(t, err)
	c := &testCA{dir: t.TempDir(), ca: ca}
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "ca.crt"), ca.Cert, 0o600))
	return c
}

// pair writes a certificate for id (also valid for 127.0.0.1) and returns
// its files.
func (c *testCA) pair(t *testing.T, id string) (cert, key string) {
	t.Helper()
	p, err := tlsconf.IssueNode(c.ca, tlsconf.NodeCert{ID: id, Hosts: []string{"127.0.0.1"}, Validity: time.Hour})
	require.NoError(t, err)
	cert, key = filepath.Join(c.dir, id+".crt"), filepath.Join(c.dir, id+".key")
	require.NoError(t, os.WriteFile(cert, p.Cert, 0o600))
	require.NoError(t, os.WriteFile(key, p.Key, 0o600))
	return cert, key
}

// flags are gsd's cluster TLS flags for node id.
func (c *testCA) flags(t *testing.T, id string) []string {
	cert, key := c.pair(t, id)
	return []string{"--cluster-ca", filepath.Join(c.dir, "ca.crt"), "--cluster-cert", cert, "--cluster-key", key}
}

// tlsConfig trusts the CA, as a player or operator given ca.crt would.
func (c *testCA) tlsConfig() *tls.Config {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(c.ca.Cert)
	return &tls.Config{RootCAs: roots}
}

func (c *testCA) client(t *testing.T, addrs ...string) *client.Client {
	cl := client.New(addrs, client.WithTLSConfig(c.tlsConfig()), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	t.Cleanup(cl.Close)
	return cl
}

// waitFor polls c's status until ok accepts it.
func waitFor(t *testing.T, n *testNode, c *client.Client, what string, ok func(client.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last client.Status
	var err error
	for !n.hasExited() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last, err = c.Status(ctx)
		cancel()
		if err == nil && ok(last) {
			return
		}
		require.False(t, time.Now().After(deadline), "node %s: %s: last status %+v, err %v", n.id, what, last, err)
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	t.Fatalf("node %s exited (%d) while waiting: %s; the end of its log:\n%s", n.id, n.code, what, n.logTail(40))
}

// TestClusterWithMutualTLSReplicatesAndRefusesOutsiders: two nodes with
// certificates of one CA form a cluster (n1 dials n2 through a proxy:
// peers are known by their certificate's node id, not the address) and
// forward to each other; a process without a certificate of the cluster
// can neither send a Raft RPC, nor call an internal route, nor join.
func TestClusterWithMutualTLSReplicatesAndRefusesOutsiders(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	n2HTTP, n2Raft := freeAddr(t), freeAddr(t)
	proxy := newTCPProxy(t, n2Raft)
	peerFile := filepath.Join(t.TempDir(), "peers.json")
	b, _ := json.Marshal(map[string]string{"n2": proxy.ln.Addr().String()})
	require.NoError(t, os.WriteFile(peerFile, b, 0o600))

	n1 := startNode(t, "n1", t.TempDir(), append(ca.flags(t, "n1"), "--peer-addr-file", peerFile)...)
	c1 := ca.client(t, n1.http)
	waitFor(t, n1, c1, "leads", func(s client.Status) bool { return s.Leader == "n1" })
	n2 := startNodeAt(t, "n2", t.TempDir(), n2HTTP, n2Raft, append(ca.flags(t, "n2"), "--join", n1.http)...)
	waitFor(t, n1, c1, "has two voters", func(s client.Status) bool { return len(s.Servers) == 2 })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c2 := ca.client(t, n2.http) // a follower forwards to the leader, over mutual TLS
	require.NoError(t, c2.CreateWorld(ctx, "arena", wire.Rules{}))
	ev, err := c2.Act(ctx, "arena", incr("p1", 1, "e1", 7))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		e, err := c2.Entity(ctx, "arena", "e1", client.Stale)
		v, _ := e.Int("n")
		return err == nil && e.Seq >= ev.Seq && v == 7
	}, 30*time.Second, 20*time.Millisecond)
	require.Positive(t, proxy.conns.Load(), "n1 dials n2 through the proxy")
	// A player over wss:// on the follower: its actions reach the leader.
	p, err := c2.Play(ctx, "arena", client.PlayOptions{Player: "p2"})
	require.NoError(t, err)
	pev, err := p.Act(ctx, client.ActionRequest{Seq: 1, Ops: []wire.Op{client.Incr("e1", "n", 1)}})
	require.NoError(t, err)
	require.Equal(t, "applied", string(pev.Status))
	require.NoError(t, p.Close())
	st, err := c1.Status(ctx)
	require.NoError(t, err)
	for _, n := range st.Nodes {
		require.Contains(t, n.HTTPAddr, "https://", "the node table sends players to https")
	}

	// A Raft RPC in clear is refused at the mux.
	conn, err := net.Dial("tcp", n1.raft)
	require.NoError(t, err)
	_, err = conn.Write([]byte{0, 1, 2, 3, 4, 5, 6, 7}) // an append entries' type byte and junk
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = conn.Read(make([]byte, 64))
	require.True(t, errors.Is(err, io.EOF) || isReset(err), "refused: %v", err)
	conn.Close()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.tlsConfig()}}
	require.Eventually(t, func() bool {
		resp, err := hc.Get("https://" + n1.http + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return regexpFind(`gsd_raft_mux_connections_total\{outcome="tls_refused"\} [1-9]`, string(b))
	}, 30*time.Second, 20*time.Millisecond)

	// An internal route, called without a certificate of the cluster.
	resp, err := hc.Get("https://" + n1.http + "/internal/v1/worlds/arena/entities/e1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", body)

	// A node of the CA that is not a member (a removed one, or one never
	// added) can neither send a Raft RPC nor call an internal route.
	outsider := loadCluster(t, ca, "n9")
	rc, err := tls.Dial("tcp", n1.raft, outsider.ClientConfig())
	if err == nil {
		_, err = rc.Write([]byte{0})
		if err == nil {
			require.NoError(t, rc.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, err = rc.Read(make([]byte, 1)) // TLS 1.3: the verdict on our certificate comes after our handshake
		}
		rc.Close()
	}
	require.Error(t, err, "n1's mux refuses n9's certificate")
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "refused, not silent: %v", err)
	oc := &http.Client{Transport: &http.Transport{TLSClientConfig: outsider.ClientConfig()}}
	resp, err = oc.Get("https://" + n1.http + "/internal/v1/worlds/arena/entities/e1")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", body)
	requireContains(t, string(body), "not a member")
	resp, err = hc.Get("https://" + n1.http + "/metrics")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.True(t, regexpFind(`gsd_tls_peers_refused_total [1-9]`, string(body)), "the Raft handshake is counted")

	// A node whose certificate is of another CA cannot join.
	other := newTestCA(t)
	n3 := startNode(t, "n3", t.TempDir(), append(other.flags(t, "n3"), "--join", n1.http, "--join-timeout", "5s")...)
	require.Equal(t, 1, n3.exited(t))
	requireContains(t, n3.stderr.String(), "gsd: join via", "certificate")
	// Nor can a node without TLS.
	n4 := startNode(t, "n4", t.TempDir(), "--join", n1.http, "--join-timeout", "2s")
	require.Equal(t, 1, n4.exited(t))
	st, err = c1.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Servers, 2, "no outsider was added")

	require.Equal(t, 0, n2.stop(t))
	require.Equal(t, 0, n1.stop(t))
}

// loadCluster loads a cluster identity for id from c, as a process
// holding c's certificate for id would.
func loadCluster(t *testing.T, c *testCA, id string) *tlsconf.Cluster {
	t.Helper()
	cert, key := c.pair(t, id)
	cl, err := tlsconf.LoadCluster(tlsconf.ClusterFiles{CA: filepath.Join(c.dir, "ca.crt"), Cert: cert, Key: key}, 0, nil)
	require.NoError(t, err)
	return cl
}

// nodes is a node table of these ids.
type nodes []string

func (n nodes) Node(id string) (fsm.NodeInfo, bool) {
	return fsm.NodeInfo{ID: id}, slices.Contains(n, id)
}

func TestMemberCheckAdmitsMembersOnlyOnceTheNodeIsInACluster(t *testing.T) {
	check := memberCheck("n1", nodes{"n1", "n2"})
	require.NoError(t, check("n2"))
	require.NoError(t, check("n1"))
	require.ErrorContains(t, check("n3"), "node table")
	fresh := memberCheck("n1", nodes{})
	require.NoError(t, fresh("n3"), "a node not in a cluster yet hears from whoever adds it")
}

// TestPublicTLSServesAndReloadsItsCertificate: with --tls-cert the HTTP
// port speaks only TLS, and a new certificate written over the files is
// served to new connections without a restart.
func TestPublicTLSServesAndReloadsItsCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key := ca.pair(t, "public")
	n := startNode(t, "web", t.TempDir(), "--tls-cert", cert, "--tls-key", key)
	c := ca.client(t, n.http)
	waitFor(t, n, c, "leads", func(s client.Status) bool { return s.Leader == "web" })

	serial := func() string {
		conn, err := tls.Dial("tcp", n.http, ca.tlsConfig())
		if err != nil {
			return ""
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	require.NotEmpty(t, first)
	resp, err := http.Get("http://" + n.http + "/v1/status")
	if err == nil {
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP is not served")
	}
	// The same names, a new key: written over the old files.
	ca.pair(t, "public")
	require.Eventually(t, func() bool { s := serial(); return s != "" && s != first }, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, 0, n.stop(t))
}

func TestRunRejectsBadTLSFlags(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert, key := ca.pair(t, "n1")
	caFile := filepath.Join(ca.dir, "ca.crt")
	other := newTestCA(t)
	ocert, okey := other.pair(t, "n1")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert", cert}, "--tls-cert and --tls-key go together"},
		{"unreadable public pair", []string{"--tls-cert", cert, "--tls-key", caFile}, "--tls-cert"},
		{"cluster cert without CA", []string{"--cluster-cert", cert, "--cluster-key", key}, "go together"},
		{"cluster cert of another CA", []string{"--cluster-ca", caFile, "--cluster-cert", ocert, "--cluster-key", okey}, "not a node of this cluster"},
		{"id other than the certificate's", []string{"--id", "n2", "--cluster-ca", caFile, "--cluster-cert", cert, "--cluster-key", key}, `names node "n1", but --id is "n2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr syncBuffer
			code := run(context.Background(), tc.args, io.Discard, &stderr)
			require.Equal(t, 1, code, stderr.String())
			requireContains(t, stderr.String(), tc.want)
		})
	}
}

func regexpFind(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

func TestNodeIDDefaultsToTheClusterCertificates(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.pair(t, "n7")
	o := tlsOptions{caFile: filepath.Join(ca.dir, "ca.crt"), clusterCert: cert, clusterKey: key}
	id := ""
	require.NoError(t, o.complete(&id, discardLogger()))
	require.Equal(t, "n7", id)
	require.NotNil(t, o.httpTLS())
	require.Equal(t, "https://127.0.0.1:1", o.advertise("127.0.0.1:1"))
	require.Equal(t, "https://h:1", o.advertise("https://h:1"))
	require.Equal(t, "127.0.0.1:2", o.reportAddr("127.0.0.1:2", "https://h:1"))

	var plain tlsOptions
	require.NoError(t, plain.complete(&id, discardLogger()))
	require.Nil(t, plain.httpTLS())
	require.Nil(t, plain.clientOptions())
	require.Equal(t, "127.0.0.1:1", plain.advertise("127.0.0.1:1"))
}
