package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestTokenMintsAnHS256TokenTheEdgeAccepts(t *testing.T) {
	key := []byte(strings.Repeat("s", 40))
	path := filepath.Join(t.TempDir(), "hs.key")
	require.NoError(t, os.WriteFile(path, append(key, '\n'), 0o600))
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"token", "ann", "--key-file", path, "--audience", "game", "--issuer", "dev", "--ttl", "5m"}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	var claims jwt.RegisteredClaims
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("game"), jwt.WithIssuer("dev"), jwt.WithExpirationRequired()).
		ParseWithClaims(strings.TrimSpace(out.String()), &claims, func(*jwt.Token) (any, error) { return key, nil })
	require.NoError(t, err)
	require.Equal(t, "ann", claims.Subject)
	require.WithinDuration(t, time.Now().Add(5*time.Minute), claims.ExpiresAt.Time, time.Minute)

	out.Reset()
	code = run(context.Background(), []string{"token", "ops", "--key-file", path, "--admin"}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	var admin tokenClaims
	_, err = jwt.NewParser().ParseWithClaims(strings.TrimSpace(out.String()), &admin, func(*jwt.Token) (any, error) { return key, nil })
	require.NoError(t, err)
	require.True(t, admin.Admin)

	for _, args := range [][]string{{"token", "ann"}, {"token", "ann", "--key-file", filepath.Join(t.TempDir(), "none")}, {"token", "ann", "--key-file", path, "--ttl", "0s"}} {
		require.NotEqual(t, 0, run(context.Background(), args, nil, &out, &errOut), args)
	}
}
