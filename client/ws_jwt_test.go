package client

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func hs256(t *testing.T, key []byte, sub, aud string, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: sub, Audience: jwt.ClaimStrings{aud}, ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(key)
	require.NoError(t, err)
	return s
}

// createArena creates world arena on a node with auth on (audience
// "game"), as a game server: with auth on, only servers and admins create
// worlds. Its own client: the players' clients carry no server token.
func createArena(ctx context.Context, t *testing.T, url string, key []byte) {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "gs1", "aud": "game", "gsd_role": "server", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(key)
	require.NoError(t, err)
	c := New([]string{url}, WithHeader("Authorization", "Bearer "+tok))
	defer c.Close()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
}
