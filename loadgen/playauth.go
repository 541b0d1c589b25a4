package loadgen

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/client"
)

// playTokenTTL is how long the tokens the load generator mints live: longer
// than any run, so that no connection is closed for an expired token.
const playTokenTTL = time.Hour

// tokenSource mints a fresh HS256 token for player at every connect and
// resume (client.PlayOptions.TokenSource), as a game's identity service
// would hand them out.
func tokenSource(key []byte, player string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		now := time.Now()
		return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Subject:   player,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(playTokenTTL)),
		}).SignedString(key)
	}
}

// controlOptions are the client options of the run's own calls (find the
// leader, create the world, wait for it): with a key, a game server's
// token (claim gsd_role "server"), as nodes with auth on ask every route
// for a credential and world creation for a server's or an admin's.
func controlOptions(key []byte) ([]client.Option, error) {
	if key == nil {
		return nil, nil
	}
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "loadgen", "gsd_role": "server", "iat": now.Unix(), "exp": now.Add(playTokenTTL).Unix(),
	}).SignedString(key)
	if err != nil {
		return nil, err
	}
	return []client.Option{client.WithHeader("Authorization", "Bearer "+tok)}, nil
}
