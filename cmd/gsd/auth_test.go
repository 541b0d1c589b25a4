package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestAuthFlagsBuildTheEdgesAuthConfig(t *testing.T) {
	dir := t.TempDir()
	hs := filepath.Join(dir, "hs.key")
	require.NoError(t, os.WriteFile(hs, []byte(strings.Repeat("k", 32)+"\n"), 0o600))

	off := authOptions{}
	c, err := off.config(context.Background(), true, slog.Default())
	require.NoError(t, err)
	require.Nil(t, c, "no key file: auth off")

	on := authOptions{hs256KeyFile: hs, issuer: "me", audience: "game"}
	c, err = on.config(context.Background(), true, slog.Default())
	require.NoError(t, err)
	require.Equal(t, "game", c.Audience)
	require.Len(t, c.HS256Key, 32)

	for what, o := range map[string]authOptions{
		"audience without key": {audience: "game"},
		"missing key file":     {hs256KeyFile: filepath.Join(dir, "none")},
		"missing pem file":     {publicKeyFile: filepath.Join(dir, "none")},
		"leeway too large":     {hs256KeyFile: hs, leeway: 1e12},
	} {
		_, err := o.config(context.Background(), true, slog.Default())
		require.Error(t, err, what)
	}
}

func TestAuthFlagsReadAJWKSFileOrURL(t *testing.T) {
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	set := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e1","alg":"EdDSA","x":%q}]}`,
		base64.RawURLEncoding.EncodeToString(ed.Public().(ed25519.PublicKey)))
	require.NoError(t, os.WriteFile(jwks, []byte(set), 0o600))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(set))
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "ann", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	tok.Header["kid"] = "e1"
	signed, err := tok.SignedString(ed)
	require.NoError(t, err)
	for what, o := range map[string]authOptions{
		"file": {jwksFile: jwks},
		"url":  {jwksURL: srv.URL},
	} {
		c, err := o.config(ctx, true, slog.Default())
		require.NoError(t, err, what)
		require.NotNil(t, c.JWKS, what)
		k, err := c.JWKS.Keyfunc(tok)
		require.NoError(t, err, what)
		require.Equal(t, ed.Public(), k, what)
		_, err = jwt.Parse(signed, c.JWKS.Keyfunc)
		require.NoError(t, err, what)
	}
	// Checking flags does not fetch the URL.
	c, err := (&authOptions{jwksURL: "http://127.0.0.1:1/never"}).config(ctx, false, slog.Default())
	require.NoError(t, err)
	_, err = c.JWKS.Keyfunc(tok)
	require.Error(t, err)

	for what, o := range map[string]authOptions{
		"file and url":      {jwksFile: jwks, jwksURL: srv.URL},
		"missing jwks file": {jwksFile: filepath.Join(dir, "none")},
		"not a url":         {jwksURL: "ftp://x/jwks"},
		"unreachable url":   {jwksURL: "http://127.0.0.1:1/jwks"},
	} {
		_, err := o.config(ctx, true, slog.Default())
		require.Error(t, err, what)
	}
}
