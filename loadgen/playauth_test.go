package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/stretchr/testify/require"
)

// With auth on, the players' connections carry tokens the load generator
// mints with the nodes' key; without the key, or with another, they are
// refused and the run fails clearly.
func TestPlayBattleWithAuth(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	addr := testnode.StartWith(t, func(c *api.Config) { c.Auth = &api.AuthConfig{HS256Key: key} })
	p := smallLoad("playauth1")
	p.Players, p.Rate = 3, 100
	r, err := PlayBattle(context.Background(), &Target{Addrs: []string{addr}}, p, PlayParams{BulkRate: 100, AuthKey: key},
		Timing{Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, "client (WebSocket play, JWT auth)", r.Level)
	require.Equal(t, "hs256", r.Params["auth"])
	require.Positive(t, r.Figures["connect_all_s"])
	require.Positive(t, r.Counts["applied"])
	require.Zero(t, r.Counts["failed"], "%v", r.Errors)
	require.True(t, r.OK(), "%+v", r.Checks)

	p.World = "playauth2"
	// With auth on every route needs a credential: the run's own calls
	// are refused first.
	_, err = PlayBattle(context.Background(), &Target{Addrs: []string{addr}}, p, PlayParams{}, Timing{Duration: 100 * time.Millisecond})
	require.ErrorContains(t, err, "refuse the run's credential")
	_, err = PlayBattle(context.Background(), &Target{Addrs: []string{addr}}, p, PlayParams{AuthKey: []byte("another key, another key, another")},
		Timing{Duration: 100 * time.Millisecond})
	require.ErrorContains(t, err, "refuse the run's credential")
}

func TestTokenSourceMintsATokenForThePlayer(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	tok, err := tokenSource(key, "p7")(context.Background())
	require.NoError(t, err)
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return key, nil })
	require.NoError(t, err)
	require.Equal(t, "p7", claims.Subject)
	require.True(t, claims.ExpiresAt.After(time.Now()))
}
