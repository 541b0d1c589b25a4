package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/stretchr/testify/require"
)

const ctlSecret = "ctl-test-secret-0123456789abcdef012345"

func TestCtlSendsTheClusterSecretAndDrains(t *testing.T) {
	addr := testnode.StartWith(t, func(c *api.Config) { c.ClusterSecret = []byte(ctlSecret) })
	file := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(file, []byte(ctlSecret+"\n"), 0o600))
	base := []string{"--addr", addr, "--timeout", "30s"}
	with := func(args ...string) []string { return append(append([]string{}, base...), args...) }
	mustRun(t, with("world", "create", "arena")...) // public

	t.Setenv(envClusterSecret, "")
	code, _, errOut := ctl(t, "", with("session", "ban", "arena", "eve", "--reason", "x")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "unauthorized (HTTP 401)")
	require.Contains(t, errOut, api.HeaderClusterKey)
	require.JSONEq(t, `{"ok":true}`, mustRun(t, with("--secret-file", file, "session", "ban", "arena", "eve", "--reason", "x")...))
	t.Setenv(envClusterSecret, ctlSecret)
	require.JSONEq(t, `{"ok":true}`, mustRun(t, with("session", "unban", "arena", "eve")...))

	// A single node has nowhere to move its players.
	code, _, errOut = ctl(t, "", with("drain", "n1")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no_target (HTTP 409)")
	require.JSONEq(t, `{"node":"n1","draining":false,"moved":0}`, mustRun(t, with("drain", "n1", "--undo")...))
	require.JSONEq(t, `{"node":"n1","draining":false,"moved":0}`, mustRun(t, with("drain", addr, "--undo")...))
	code, _, errOut = ctl(t, "", with("drain", "n1", "--to", "n9")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not_found (HTTP 404)")
	code, _, errOut = ctl(t, "", with("drain", "n9")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no node "n9"`)
	code, _, errOut = ctl(t, "", with("drain", "n1", "--undo", "--to", "n2")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--to and --undo")
	code, _, errOut = ctl(t, "", with("--secret-file", filepath.Join(t.TempDir(), "missing"), "status")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "cluster secret")
	t.Setenv(envClusterSecret, "wrong")
	code, _, errOut = ctl(t, "", with("drain", "n1", "--undo")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "wrong cluster secret")
	code, _, _ = ctl(t, "", "--addr", addr, "--timeout", "1s", "drain", "127.0.0.1:1")
	require.Equal(t, 1, code)
}
