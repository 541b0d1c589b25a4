package api

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/stretchr/testify/require"
)

// testKeys are one key of each kind the edge accepts, plus impostors.
type testKeys struct {
	hs, otherHS []byte
	rsa         *rsa.PrivateKey
	ed, otherEd ed25519.PrivateKey
}

var keys = func() testKeys {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	return testKeys{hs: []byte(strings.Repeat("k", 32)), otherHS: []byte(strings.Repeat("x", 32)), rsa: r, ed: ed, otherEd: other}
}()

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func testAuth() *edge.AuthConfig {
	return &edge.AuthConfig{
		HS256Key:   keys.hs,
		PublicKeys: []crypto.PublicKey{&keys.rsa.PublicKey, keys.ed.Public()},
		Issuer:     "gsd-test", Audience: "arena-players",
		Leeway: 30 * time.Second,
		Now:    func() time.Time { return testNow },
	}
}

// claims returns valid claims for player, adjusted by mods.
func claims(player string, mods ...func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
	c := jwt.RegisteredClaims{
		Subject: player, Issuer: "gsd-test", Audience: jwt.ClaimStrings{"arena-players"},
		ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour)),
		NotBefore: jwt.NewNumericDate(testNow.Add(-time.Minute)),
	}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	require.NoError(t, err)
	return s
}

func withAuth(c *Config) { c.Auth = testAuth() }

func TestAuthActionsTakeThePlayerFromTheToken(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, withAuth)
	e.do("POST", "/v1/worlds", arenaBody)
	for i, tok := range []string{
		sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann")),
		sign(t, jwt.SigningMethodRS256, keys.rsa, claims("ann")),
		sign(t, jwt.SigningMethodEdDSA, keys.ed, claims("ann")),
		// Expired 10s ago, within the 30s leeway.
		sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann", func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-10 * time.Second)) })),
	} {
		body := `{"seq":` + string(rune('1'+i)) + `,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
		code, m := e.doJSON("POST", "/v1/worlds/arena/actions", body, "Authorization", "Bearer "+tok)
		require.Equal(t, http.StatusOK, code, "token %d: %v", i, m)
		require.Equal(t, "ann", m["player"])
	}
	// A body that names the same player is fine; another player is forbidden.
	tok := sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann"))
	code, _ := e.doJSON("POST", "/v1/worlds/arena/actions", `{"player":"ann","seq":9,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`, "Authorization", "Bearer "+tok)
	require.Equal(t, http.StatusOK, code)
	e.requireError(http.StatusForbidden, edge.CodeForbidden, "POST", "/v1/worlds/arena/actions", incrBody, "Authorization", "Bearer "+tok)
	// The batch endpoint too.
	code, m := e.doJSON("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+incrBody+`,{"seq":10,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}]}`, "Authorization", "Bearer "+tok)
	require.Equal(t, http.StatusOK, code)
	res := m["results"].([]any)
	require.Equal(t, edge.CodeForbidden, res[0].(map[string]any)["code"])
	require.Equal(t, "ann", res[1].(map[string]any)["player"])
}

func TestAuthRejectsForgedExpiredAndMisaddressedTokens(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, withAuth)
	e.do("POST", "/v1/worlds", arenaBody)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("ann")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	pub, err := x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey)
	require.NoError(t, err)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	cases := map[string]string{
		"missing":         "",
		"garbage":         "Bearer not.a.token",
		"not Bearer":      "Basic " + sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann")),
		"forged HS256":    "Bearer " + sign(t, jwt.SigningMethodHS256, keys.otherHS, claims("ann")),
		"forged EdDSA":    "Bearer " + sign(t, jwt.SigningMethodEdDSA, keys.otherEd, claims("ann")),
		"alg none":        "Bearer " + none,
		"alg confusion":   "Bearer " + sign(t, jwt.SigningMethodHS256, rsaPEM, claims("ann")),
		"method not kept": "Bearer " + sign(t, jwt.SigningMethodHS384, keys.hs, claims("ann")),
		"expired": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann", func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Minute))
		})),
		"no expiry": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann", func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })),
		"not yet valid": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann", func(c *jwt.RegisteredClaims) {
			c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Minute))
		})),
		"wrong audience": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann", func(c *jwt.RegisteredClaims) {
			c.Audience = jwt.ClaimStrings{"other-game"}
		})),
		"wrong issuer": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.hs, claims("ann", func(c *jwt.RegisteredClaims) { c.Issuer = "evil" })),
		"no subject":   "Bearer " + sign(t, jwt.SigningMethodHS256, keys.hs, claims("")),
	}
	body := `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
	for what, hdr := range cases {
		var h []string
		if hdr != "" {
			h = []string{"Authorization", hdr}
		}
		code, resp, b := e.do("POST", "/v1/worlds/arena/actions", body, h...)
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", what, b)
		require.Contains(t, string(b), `"code":"unauthorized"`, what)
		require.Equal(t, `Bearer realm="gsd"`, resp.Get("WWW-Authenticate"), what)
	}
	require.Zero(t, fake.Acts, "nothing reached the backend")
}

func TestAuthOffKeepsTheBodysPlayer(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake)
	e.do("POST", "/v1/worlds", arenaBody)
	code, m := e.doJSON("POST", "/v1/worlds/arena/actions", incrBody, "Authorization", "Bearer whatever")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "p1", m["player"])
}

func TestAuthConfigValidation(t *testing.T) {
	ok := testAuth()
	require.NoError(t, ok.Validate())
	for what, c := range map[string]*edge.AuthConfig{
		"no keys":       {},
		"short hs key":  {HS256Key: []byte("short")},
		"foreign key":   {PublicKeys: []crypto.PublicKey{"nope"}},
		"huge leeway":   {HS256Key: keys.hs, Leeway: time.Hour},
		"negative skew": {HS256Key: keys.hs, Leeway: -time.Second},
	} {
		require.Error(t, c.Validate(), what)
		cfg := testConfig()
		cfg.Auth = c
		_, err := newFakeServer(cfg, nil)
		require.Error(t, err, what)
	}
}
