// Package testnode starts a real single-node gsd (store and HTTP edge,
// in-process, on loopback) for the tests of packages above the edge:
// gsdctl, loadgen.
package testnode

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// Start runs a bootstrapped single node until the test ends, waits until it
// leads, and returns its HTTP address.
func Start(t testing.TB) string {
	t.Helper()
	return start(t, false, nil)
}

// StartUDP is Start with the UDP input lane served on loopback.
func StartUDP(t testing.TB) string {
	t.Helper()
	return start(t, true, nil)
}

// StartWith is Start with the edge's config adjusted by opt (when not nil).
func StartWith(t testing.TB, opt func(*api.Config)) string {
	t.Helper()
	return start(t, false, opt)
}

func start(t testing.TB, udp bool, opt func(*api.Config)) string {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	httpAddr := hs.Listener.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var (
		st  *store.Store
		reg *prometheus.Registry
		err error
	)
	// The Raft port is picked free, then bound by the store: another test
	// may take it in between, so a bind failure picks another.
	for attempt := 0; attempt < 5; attempt++ {
		raftAddr, perr := freeport.Addr()
		require.NoError(t, perr)
		cfg := store.DefaultConfig()
		cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = "n1", t.TempDir(), raftAddr, httpAddr
		cfg.Bootstrap, cfg.NoSync, cfg.Logger = true, true, log
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
		reg = prometheus.NewRegistry()
		if st, err = store.New(cfg, reg); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	require.NoError(t, err)
	acfg := api.DefaultConfig()
	acfg.Logger = log
	if opt != nil {
		opt(&acfg)
	}
	srv, err := api.New(acfg, st, api.NewSingleGroupRouter(st), reg)
	require.NoError(t, err)
	hs.Config.Handler = srv.Handler()
	var lane *api.UDP
	if udp {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		lane, err = srv.ServeUDP(pc, api.DefaultUDPConfig(), reg)
		require.NoError(t, err)
	}
	hs.Start()
	t.Cleanup(func() {
		if lane != nil {
			require.NoError(t, lane.Close())
		}
		srv.Close()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, st.Close(ctx))
	})
	// Asked of the store (with auth on, /v1/status needs a token): it
	// leads, takes actions, and has recorded its own addresses in the
	// node table (a new leader does so a moment after it leads; until
	// then the status names the leader without its HTTP address).
	require.Eventually(t, func() bool { return st.LeaderReady() && st.Status().LeaderHTTP != "" }, 30*time.Second, 10*time.Millisecond)
	return httpAddr
}
