package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/internal/testnode"

	"github.com/stretchr/testify/require"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	return addr
}

// startNode runs a real single-node gsd for the test; see internal/testnode.
func startNode(t *testing.T) string { return testnode.Start(t) }

// ctl runs gsdctl with args (and stdin) and returns its exit code and output.
func ctl(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return ctlCtx(context.Background(), t, stdin, args...)
}

func ctlCtx(ctx context.Context, t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// mustRun runs gsdctl and requires success.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := ctl(t, "", args...)
	require.Equal(t, 0, code, "gsdctl %v: %s", args, errOut)
	return out
}
