package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// members is a peer check that admits ids.
func members(ids ...string) PeerCheck {
	return func(id string) error {
		if slices.Contains(ids, id) {
			return nil
		}
		return fmt.Errorf("not in the node table")
	}
}

// A valid certificate of the cluster CA that names another node than the
// members is refused on every node-to-node connection, both ways, and
// counted.
func TestPeerWithAValidCertificateOfANonMemberIsRefusedAndCounted(t *testing.T) {
	ca := newCA(t)
	n1, n2, n3 := loadNode(t, ca, "n1"), loadNode(t, ca, "n2"), loadNode(t, ca, "n3")
	n1.SetPeerCheck(members("n1", "n2"))

	cerr, serr := handshake(t, n1.ServerConfig(), n2.ClientConfig())
	require.NoError(t, cerr)
	require.True(t, serr == nil || errors.Is(serr, io.EOF), "server: %v", serr)

	// n3 dialing n1 (Raft): refused by n1's server side.
	_, serr = handshake(t, n1.ServerConfig(), n3.ClientConfig())
	require.ErrorIs(t, serr, ErrNotMember)
	require.Equal(t, uint64(1), n1.Refused())
	// n1 dialing n3: refused by n1's client side.
	cerr, _ = handshake(t, n3.ServerConfig(), n1.ClientConfig())
	require.ErrorIs(t, cerr, ErrNotMember)
	var ve *tls.CertificateVerificationError
	require.ErrorAs(t, cerr, &ve, "Go's type, so that callers tell a refused handshake from a lost request")
	require.Equal(t, uint64(2), n1.Refused())

	// A member again once the check says so: checked on every connection.
	n1.SetPeerCheck(members("n1", "n2", "n3"))
	cerr, _ = handshake(t, n3.ServerConfig(), n1.ClientConfig())
	require.NoError(t, cerr)
	require.Equal(t, uint64(2), n1.Refused())
}

// On the HTTP port, PeerNode names a non-member and refuses it, so that
// node-only routes refuse it while a join (which only names it) can
// still tell who asks.
func TestPeerNodeNamesAndRefusesANonMemberOnTheHTTPPort(t *testing.T) {
	ca := newCA(t)
	n1, n2, n3 := loadNode(t, ca, "n1"), loadNode(t, ca, "n2"), loadNode(t, ca, "n3")
	n1.SetPeerCheck(members("n1", "n2"))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := n1.PeerNode(r.TLS)
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
		}
		io.WriteString(w, id)
	}))
	srv.Listener = tls.NewListener(srv.Listener, n1.HTTPServerConfig(nil))
	srv.Start()
	defer srv.Close()
	get := func(c *Cluster) (int, string) {
		t.Helper()
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: c.ClientConfig()}}).Get("https://" + srv.Listener.Addr().String())
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, id := get(n2)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "n2", id)
	code, id = get(n3)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "n3", id)
	require.Zero(t, n1.Refused(), "the HTTP layer counts what it refuses: a join takes it")
}
