package api

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/stretchr/testify/require"
)

// testJWKS is a JWK Set of the test RSA key (kid "r1") and Ed25519 key
// (kid "e1").
func testJWKS(t *testing.T) []byte {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	pub := keys.RSA.PublicKey
	set := map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())},
		{"kty": "OKP", "crv": "Ed25519", "kid": "e1", "alg": "EdDSA", "use": "sig", "x": b64(keys.Ed.Public().(ed25519.PublicKey))},
	}}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return b
}

// signKid signs c with key under method, naming kid in the header.
func signKid(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// checkJWKSAuth requires that ks verifies the tokens of its keys by kid and
// refuses unknown kids, other keys under a known kid, and HS256.
func checkJWKSAuth(t *testing.T, ks edge.KeySet) {
	t.Helper()
	c := &edge.AuthConfig{JWKS: ks, Issuer: "gsd-test", Audience: "arena-players", Now: func() time.Time { return testNow }}
	require.NoError(t, c.Validate())
	a := edge.NewAuthenticator(*c)
	for what, tok := range map[string]string{
		"rs256": signKid(t, jwt.SigningMethodRS256, keys.RSA, "r1", claims("ann")),
		"eddsa": signKid(t, jwt.SigningMethodEdDSA, keys.Ed, "e1", claims("ann")),
	} {
		player, err := a.Verify(tok)
		require.NoError(t, err, what)
		require.Equal(t, "ann", player, what)
	}
	for what, tok := range map[string]string{
		"unknown kid":         signKid(t, jwt.SigningMethodEdDSA, keys.Ed, "nope", claims("ann")),
		"other key, same kid": signKid(t, jwt.SigningMethodEdDSA, keys.OtherEd, "e1", claims("ann")),
		"no kid":              sign(t, jwt.SigningMethodEdDSA, keys.Ed, claims("ann")),
		"hs256 without key":   signKid(t, jwt.SigningMethodHS256, keys.HS, "r1", claims("ann")),
	} {
		_, err := a.Verify(tok)
		require.ErrorIs(t, err, edge.ErrUnauthorized, what)
	}
}

func TestJWKSFileVerifiesTokensByKid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, testJWKS(t), 0o600))
	ks, err := edge.LoadJWKSFile(path)
	require.NoError(t, err)
	checkJWKSAuth(t, ks)

	_, err = edge.LoadJWKSFile(filepath.Join(t.TempDir(), "missing.json"))
	require.Error(t, err)
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte("{not json"), 0o600))
	_, err = edge.LoadJWKSFile(bad)
	require.Error(t, err)
}

func TestJWKSURLVerifiesTokensByKid(t *testing.T) {
	set := testJWKS(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(set)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ks, err := edge.NewJWKSURL(ctx, srv.URL, quietLogger())
	require.NoError(t, err)
	checkJWKSAuth(t, ks)
}
