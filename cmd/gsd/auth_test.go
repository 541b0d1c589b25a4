package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAuthFlagsBuildTheEdgesAuthConfig(t *testing.T) {
	dir := t.TempDir()
	hs := filepath.Join(dir, "hs.key")
	require.NoError(t, os.WriteFile(hs, []byte(strings.Repeat("k", 32)+"\n"), 0o600))

	off := authOptions{}
	c, err := off.config()
	require.NoError(t, err)
	require.Nil(t, c, "no key file: auth off")

	on := authOptions{hs256KeyFile: hs, issuer: "me", audience: "game"}
	c, err = on.config()
	require.NoError(t, err)
	require.Equal(t, "game", c.Audience)
	require.Len(t, c.HS256Key, 32)

	for what, o := range map[string]authOptions{
		"audience without key": {audience: "game"},
		"missing key file":     {hs256KeyFile: filepath.Join(dir, "none")},
		"missing pem file":     {publicKeyFile: filepath.Join(dir, "none")},
		"leeway too large":     {hs256KeyFile: hs, leeway: 1e12},
	} {
		_, err := o.config()
		require.Error(t, err, what)
	}
}
