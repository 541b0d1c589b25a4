package apitest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/stretchr/testify/require"
)

// TestKeys are one key of each kind the edge accepts, plus impostors.
type TestKeys struct {
	HS, OtherHS []byte
	RSA         *rsa.PrivateKey
	Ed, OtherEd ed25519.PrivateKey
}

// Keys are the test keys, made once.
var Keys = func() TestKeys {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	return TestKeys{HS: []byte(strings.Repeat("k", 32)), OtherHS: []byte(strings.Repeat("x", 32)), RSA: r, Ed: ed, OtherEd: other}
}()

// Now is the clock of the tests' authenticator.
var Now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Auth is an authenticator config that accepts the test keys at Now.
func Auth() *edge.AuthConfig {
	return &edge.AuthConfig{
		HS256Key:   Keys.HS,
		PublicKeys: []crypto.PublicKey{&Keys.RSA.PublicKey, Keys.Ed.Public()},
		Issuer:     "gsd-test", Audience: "arena-players",
		Leeway: 30 * time.Second,
		Now:    func() time.Time { return Now },
	}
}

// Claims returns valid claims for player, adjusted by mods.
func Claims(player string, mods ...func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
	c := jwt.RegisteredClaims{
		Subject: player, Issuer: "gsd-test", Audience: jwt.ClaimStrings{"arena-players"},
		ExpiresAt: jwt.NewNumericDate(Now.Add(time.Hour)),
		NotBefore: jwt.NewNumericDate(Now.Add(-time.Minute)),
	}
	for _, m := range mods {
		m(&c)
	}
	return c
}

// Sign signs c with m and key.
func Sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	require.NoError(t, err)
	return s
}

// Secret is a cluster secret for the tests.
const Secret = "0123456789abcdef0123456789abcdef-cluster"

// AdminHeader is an Authorization header (name, value) carrying an admin
// token: with auth on, every route but health, readiness and metrics
// needs a credential, and world creation a server's or an admin's.
func AdminHeader(t testing.TB) []string {
	return []string{"Authorization", "Bearer " + Sign(t, jwt.SigningMethodHS256, Keys.HS, edge.AdminClaims{RegisteredClaims: Claims("ops"), Admin: true})}
}
