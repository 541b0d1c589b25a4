package api

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/stretchr/testify/require"
)

func TestAuthActionsTakeThePlayerFromTheToken(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, withAuth)
	e.Do("POST", "/v1/worlds", arenaBody, asAdmin(t)...)
	for i, tok := range []string{
		sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann")),
		sign(t, jwt.SigningMethodRS256, keys.RSA, claims("ann")),
		sign(t, jwt.SigningMethodEdDSA, keys.Ed, claims("ann")),
		// Expired 10s ago, within the 30s leeway.
		sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-10 * time.Second)) })),
	} {
		body := `{"seq":` + string(rune('1'+i)) + `,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
		code, m := e.DoJSON("POST", "/v1/worlds/arena/actions", body, "Authorization", "Bearer "+tok)
		require.Equal(t, http.StatusOK, code, "token %d: %v", i, m)
		require.Equal(t, "ann", m["player"])
	}
	// A body that names the same player is fine; another player is forbidden.
	tok := sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann"))
	code, _ := e.DoJSON("POST", "/v1/worlds/arena/actions", `{"player":"ann","seq":9,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`, "Authorization", "Bearer "+tok)
	require.Equal(t, http.StatusOK, code)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "POST", "/v1/worlds/arena/actions", incrBody, "Authorization", "Bearer "+tok)
	// The batch endpoint too.
	code, m := e.DoJSON("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+incrBody+`,{"seq":10,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}]}`, "Authorization", "Bearer "+tok)
	require.Equal(t, http.StatusOK, code)
	res := m["results"].([]any)
	require.Equal(t, edge.CodeForbidden, res[0].(map[string]any)["code"])
	require.Equal(t, "ann", res[1].(map[string]any)["player"])
}

func TestAuthRejectsForgedExpiredAndMisaddressedTokens(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, withAuth)
	e.Do("POST", "/v1/worlds", arenaBody, asAdmin(t)...)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("ann")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	pub, err := x509.MarshalPKIXPublicKey(&keys.RSA.PublicKey)
	require.NoError(t, err)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	cases := map[string]string{
		"missing":         "",
		"garbage":         "Bearer not.a.token",
		"not Bearer":      "Basic " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann")),
		"forged HS256":    "Bearer " + sign(t, jwt.SigningMethodHS256, keys.OtherHS, claims("ann")),
		"forged EdDSA":    "Bearer " + sign(t, jwt.SigningMethodEdDSA, keys.OtherEd, claims("ann")),
		"alg none":        "Bearer " + none,
		"alg confusion":   "Bearer " + sign(t, jwt.SigningMethodHS256, rsaPEM, claims("ann")),
		"method not kept": "Bearer " + sign(t, jwt.SigningMethodHS384, keys.HS, claims("ann")),
		"expired": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Minute))
		})),
		"no expiry": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })),
		"not yet valid": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) {
			c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Minute))
		})),
		"wrong audience": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) {
			c.Audience = jwt.ClaimStrings{"other-game"}
		})),
		"wrong issuer": "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann", func(c *jwt.RegisteredClaims) { c.Issuer = "evil" })),
		"no subject":   "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, claims("")),
	}
	body := `{"seq":1,"ops":[{"op":"incr","entity":"e1","field":"score","by":1}]}`
	for what, hdr := range cases {
		var h []string
		if hdr != "" {
			h = []string{"Authorization", hdr}
		}
		code, resp, b := e.Do("POST", "/v1/worlds/arena/actions", body, h...)
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", what, b)
		require.Contains(t, string(b), `"code":"unauthorized"`, what)
		require.Equal(t, `Bearer realm="gsd"`, resp.Get("WWW-Authenticate"), what)
	}
	require.Zero(t, fake.Acts, "nothing reached the backend")
}

func TestAuthOffKeepsTheBodysPlayer(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake)
	e.Do("POST", "/v1/worlds", arenaBody, asAdmin(t)...)
	code, m := e.DoJSON("POST", "/v1/worlds/arena/actions", incrBody, "Authorization", "Bearer whatever")
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
		"huge leeway":   {HS256Key: keys.HS, Leeway: time.Hour},
		"negative skew": {HS256Key: keys.HS, Leeway: -time.Second},
	} {
		require.Error(t, c.Validate(), what)
		cfg := testConfig()
		cfg.Auth = c
		_, err := newFakeServer(cfg, nil)
		require.Error(t, err, what)
	}
}
