package edge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

func TestARefusedTLSHandshakeIsAnUnreachableLeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"we refused its certificate", &url.Error{Op: "Post", Err: &tls.CertificateVerificationError{Err: errors.New("x")}}, store.ErrNotLeader},
		{"it refused ours", &url.Error{Op: "Post", Err: fmt.Errorf("read: %w", tls.AlertError(42))}, store.ErrNotLeader},
		{"dial", &url.Error{Op: "Post", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, store.ErrNotLeader},
		{"lost after sending", &url.Error{Op: "Post", Err: errors.New("EOF")}, store.ErrOutcomeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, ForwardError("n1", tc.err, true), tc.want)
		})
	}
}

func TestPeerURLUsesHTTPSWhenNodesTalkTLS(t *testing.T) {
	plain := &Core{}
	require.Equal(t, "http://10.0.0.1:7070", plain.peerURL("10.0.0.1:7070"))
	secure := &Core{cfg: Config{PeerTLS: &tls.Config{}}}
	require.Equal(t, "https://10.0.0.1:7070", secure.peerURL("10.0.0.1:7070/"))
	require.Equal(t, "https://n1.example:7070", secure.peerURL("https://n1.example:7070"))
}

// A certificate of the cluster naming a node that is not a member (the
// peer check refused it) may ask to join as itself, and call nothing else.
func TestANonMembersCertificateMayOnlyJoinAsItself(t *testing.T) {
	notMember := errors.New("not a member")
	s := &Core{cfg: Config{PeerCert: func(*tls.ConnectionState) (string, error) { return "n3", notMember }}}
	join := httptest.NewRequest(http.MethodPost, "/v1/cluster/join", nil)
	require.NoError(t, s.checkPeerCert(join, joinPattern))
	require.NoError(t, s.CheckJoiner(join, "n3"))
	require.ErrorIs(t, s.CheckJoiner(join, "n1"), ErrForbidden)
	act := httptest.NewRequest(http.MethodPost, InternalActPath("w"), nil)
	require.ErrorIs(t, s.checkPeerCert(act, "POST "+InternalActPath("{world}")), ErrUnauthorized)

	// No certificate of the cluster at all: not even a join.
	s.cfg.PeerCert = func(*tls.ConnectionState) (string, error) { return "", notMember }
	require.ErrorIs(t, s.checkPeerCert(join, joinPattern), ErrUnauthorized)
	require.ErrorIs(t, s.CheckJoiner(join, "n3"), ErrUnauthorized)
}
