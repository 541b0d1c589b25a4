package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startNode runs a one-node gsd (store + api, as cmd/gsd wires them) on
// loopback and returns its HTTP address.
func startNode(t *testing.T) string {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	httpAddr := hs.Listener.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = "n1", t.TempDir(), freeAddr(t), httpAddr
	cfg.Bootstrap, cfg.NoSync, cfg.Logger = true, true, log
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	reg := prometheus.NewRegistry()
	st, err := store.New(cfg, reg)
	require.NoError(t, err)
	acfg := api.DefaultConfig()
	acfg.Logger = log
	srv, err := api.New(acfg, st, reg)
	require.NoError(t, err)
	hs.Config.Handler = srv.Handler()
	hs.Start()
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, st.Close(ctx))
	})
	c := client.New([]string{httpAddr})
	defer c.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := c.Status(ctx)
		return err == nil && s.LeaderHTTP != ""
	}, 30*time.Second, 10*time.Millisecond)
	return httpAddr
}

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
