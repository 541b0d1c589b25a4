package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWithTLSConfigSpeaksHTTPSToAPrivateCA(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"n1","leader":"n1"}`))
	}))
	defer ts.Close()
	addr := ts.Listener.Addr().String()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())

	c := New([]string{addr}, WithTLSConfig(&tls.Config{RootCAs: roots}), WithMaxAttempts(1))
	defer c.Close()
	require.Equal(t, []string{"https://" + addr}, c.Addrs(), "an address without a scheme is https")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "n1", st.ID)

	// Without the CA the server is not trusted.
	plain := New([]string{"https://" + addr}, WithMaxAttempts(1))
	defer plain.Close()
	_, err = plain.Status(ctx)
	require.ErrorContains(t, err, "certificate")
	require.Equal(t, []string{"http://x:1"}, New([]string{"x:1"}).Addrs(), "plain by default")
}
