package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// TestMismatchForwarderIsTheStoresCallbackAndSendsThroughTheEdge: the
// daemon's wiring. The store config's mismatch callback is the
// forwarder's Report; once started over the edge, the forwarder hands the
// report to the leader (here this node: a report about another leader's
// checkpoint, which the leader ignores) and counts it sent; stop ends it
// and may be called twice.
func TestMismatchForwarderIsTheStoresCallbackAndSendsThroughTheEdge(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = "n1", t.TempDir(), freeAddr(t), "127.0.0.1:1"
	cfg.Bootstrap, cfg.NoSync, cfg.Logger = true, true, log
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	fwd, err := newMismatchForwarder(&cfg, reg, log)
	require.NoError(t, err)
	require.NotNil(t, cfg.OnCheckpointMismatch)
	_, err = newMismatchForwarder(&cfg, reg, log)
	require.ErrorContains(t, err, "checkpoint mismatch forwarder", "its counter is registered once")

	st, err := store.New(cfg, reg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, st.Close(ctx))
	})
	require.Eventually(t, st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	acfg := api.DefaultConfig()
	acfg.Logger = log
	srv, err := api.New(acfg, st, api.NewSingleGroupRouter(st), reg)
	require.NoError(t, err)
	t.Cleanup(srv.Close)

	// Queued before the edge exists, as a mismatch found during startup is.
	cfg.OnCheckpointMismatch(store.CheckpointMismatch{Node: "n1", World: "w", Index: 3, Leader: "n0", LeaderHash: 1, Local: 2})
	stop := startMismatchForwarder(fwd, srv)
	require.Eventually(t, func() bool { return forwards(t, reg, "sent") == 1 }, 10*time.Second, 10*time.Millisecond)
	stop()
	stop()
	require.Nil(t, st.Status().LastMismatch, "another leader's checkpoint: ignored")
}

// forwards is gsd_checkpoint_mismatch_forwards_total{outcome} in reg.
func forwards(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "gsd_checkpoint_mismatch_forwards_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
