package shard

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/tlsconf"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// clusterTLS mints a node certificate of ca for id and returns its
// mutual-TLS configs.
func clusterTLS(t *testing.T, ca tlsconf.PEMPair, id string) *tlsconf.Cluster {
	t.Helper()
	node, err := tlsconf.IssueNode(ca, tlsconf.NodeCert{ID: id, Validity: time.Hour})
	require.NoError(t, err)
	dir := t.TempDir()
	files := tlsconf.ClusterFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "n.crt"), Key: filepath.Join(dir, "n.key")}
	require.NoError(t, os.WriteFile(files.CA, ca.Cert, 0o600))
	require.NoError(t, os.WriteFile(files.Cert, node.Cert, 0o600))
	require.NoError(t, os.WriteFile(files.Key, node.Key, 0o600))
	c, err := tlsconf.LoadCluster(files, 0, nil)
	require.NoError(t, err)
	return c
}

func newCA(t *testing.T) tlsconf.PEMPair {
	t.Helper()
	ca, err := tlsconf.NewCA("test", time.Hour)
	require.NoError(t, err)
	return ca
}

func withTLS(c *tlsconf.Cluster) func(*MuxConfig) {
	return func(cfg *MuxConfig) { cfg.TLS, cfg.DialTLS = c.ServerConfig(), c.ClientConfig() }
}

func TestGroupsExchangeRPCsOverMutualTLS(t *testing.T) {
	ca := newCA(t)
	a, _ := newTestMux(t, withTLS(clusterTLS(t, ca, "a")))
	b, _ := newTestMux(t, withTLS(clusterTLS(t, ca, "b")))
	a0, a1 := transport(t, listen(t, a, 0), 100), transport(t, listen(t, a, 1), 101)
	transport(t, listen(t, b, 0), 200)
	transport(t, listen(t, b, 1), 201)
	for _, tc := range []struct {
		from raft.Transport
		want uint64
	}{{a0, 200}, {a1, 201}} {
		term, err := appendTerm(tc.from, raft.ServerAddress(b.Addr().String()))
		require.NoError(t, err)
		require.Equal(t, tc.want, term)
	}
	require.Equal(t, MuxStats{Legacy: 1, Grouped: 1}, b.Stats(), "the header is read inside TLS")
}

// A process without the cluster's certificate cannot send a Raft RPC: a
// plain raft TCP transport, and a Mux whose certificate is of another CA,
// are both refused at the Mux, before any group sees a byte.
func TestRaftRPCWithoutTheClusterCertificateIsRefusedAtTheMux(t *testing.T) {
	ca := newCA(t)
	node, logs := newTestMux(t, withTLS(clusterTLS(t, ca, "n1")))
	transport(t, listen(t, node, 0), 100)
	transport(t, listen(t, node, 1), 101)
	target := raft.ServerAddress(node.Addr().String())

	plain, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 2, 5*time.Second, quietRaft)
	require.NoError(t, err)
	t.Cleanup(func() {
		plain.CloseStreams()
		plain.Close()
	})
	_, err = appendTerm(plain, target)
	require.Error(t, err, "plain TCP")

	foreign, _ := newTestMux(t, withTLS(clusterTLS(t, newCA(t), "intruder")))
	for _, g := range []uint64{0, 1} {
		_, err = appendTerm(transport(t, listen(t, foreign, g), 900+g), target)
		require.Error(t, err, "a foreign CA's certificate, group %d", g)
	}
	require.Eventually(t, func() bool { return node.Stats().TLSRefused >= 3 }, 5*time.Second, 5*time.Millisecond)
	st := node.Stats()
	require.Zero(t, st.Legacy+st.Grouped, "no group got a connection")
	require.Contains(t, logs.String(), "TLS handshake")
}

// A TLS node dialing a plain raft TCP peer fails too: TLS is on for a
// whole cluster or for none of it.
func TestTLSNodeDoesNotTalkToAPlainPeer(t *testing.T) {
	m, _ := newTestMux(t, withTLS(clusterTLS(t, newCA(t), "n1")))
	plain, _ := newTestMux(t, nil)
	transport(t, listen(t, plain, 0), 100)
	_, err := listen(t, m, 0).Dial(raft.ServerAddress(plain.Addr().String()), time.Second)
	require.ErrorContains(t, err, "raft tls")
}

func TestSilentConnectionIsClosedAfterTheHandshakeTimeout(t *testing.T) {
	m, _ := newTestMux(t, func(c *MuxConfig) {
		withTLS(clusterTLS(t, newCA(t), "n1"))(c)
		c.HeaderTimeout = 50 * time.Millisecond
	})
	conn := dial(t, m) // sends nothing
	requireClosedByPeer(t, conn)
	require.Eventually(t, func() bool { return m.Stats() == MuxStats{TLSRefused: 1} }, 5*time.Second, 5*time.Millisecond)
}

func TestMuxCloseInterruptsAHandshake(t *testing.T) {
	cfg := DefaultMuxConfig()
	cfg.Addr = "127.0.0.1:0"
	withTLS(clusterTLS(t, newCA(t), "n1"))(&cfg)
	m, err := NewMux(cfg, nil)
	require.NoError(t, err)
	conn := dial(t, m)
	require.Eventually(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.pending) == 1
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, m.Close())
	requireClosedByPeer(t, conn)
}

func TestMuxConfigNeedsBothTLSSides(t *testing.T) {
	c := clusterTLS(t, newCA(t), "n1")
	cfg := DefaultMuxConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.TLS = c.ServerConfig()
	require.ErrorContains(t, cfg.Validate(), "TLS and DialTLS")
	cfg.TLS, cfg.DialTLS = nil, c.ClientConfig()
	require.ErrorContains(t, cfg.Validate(), "TLS and DialTLS")
}
