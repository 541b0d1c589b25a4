package api

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/internal/credential"
	"github.com/stretchr/testify/require"
)

func TestClusterSecretAcceptsAdminTokensOnly(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake, withAuth, withSecret)
	e.Do("POST", "/v1/worlds", arenaBody, asAdmin(t)...)
	adminTok := sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims("ops"), Admin: true})
	code, _, b := e.Do("DELETE", "/v1/node/drain", "", "Authorization", "Bearer "+adminTok)
	require.Equal(t, 200, code, "%s", b)
	code, _, b = e.Do("DELETE", "/v1/node/drain", "", edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%s", b)

	player := sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann"))
	m := e.RequireError(403, edge.CodeForbidden, "DELETE", "/v1/node/drain", "", "Authorization", "Bearer "+player)
	require.Contains(t, m["error"], credential.AdminClaim)
	forged := sign(t, jwt.SigningMethodHS256, keys.OtherHS, edge.AdminClaims{RegisteredClaims: claims("ops"), Admin: true})
	e.RequireError(401, edge.CodeUnauthorized, "DELETE", "/v1/node/drain", "", "Authorization", "Bearer "+forged)
	// An admin token is no key to the internal endpoint.
	m = e.RequireError(401, edge.CodeUnauthorized, "POST", "/v1/worlds/arena/sessions/ack", `{"id":"s1"}`, edge.HeaderForwarded, "1", "Authorization", "Bearer "+adminTok)
	require.Contains(t, m["error"], "internal endpoint")
	// Players' routes are unchanged.
	code, _, b = e.Do("POST", "/v1/worlds/arena/actions", incrBody, "Authorization", "Bearer "+sign(t, jwt.SigningMethodHS256, keys.HS, claims("p1")))
	require.Equal(t, 200, code, "%s", b)
}

func TestClusterSecretConfig(t *testing.T) {
	for _, bad := range []string{"short", strings.Repeat("a", 31) + " ", strings.Repeat("é", 20)} {
		cfg := testConfig()
		cfg.ClusterSecret = []byte(bad)
		require.ErrorContains(t, cfg.Validate(), "ClusterSecret", "%q", bad)
	}
	cfg := testConfig()
	cfg.TransferTicketTTL = 0
	require.ErrorContains(t, cfg.Validate(), "TransferTicketTTL")
}
