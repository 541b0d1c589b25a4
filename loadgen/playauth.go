package loadgen

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
