package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/api/peer"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Checkpoint mismatches reach the leader (issue 12): every group's store
// hands its mismatches (store.Config.OnCheckpointMismatch) to one
// forwarder, which posts them to the leader of the world's group over the
// node-to-node service (api/peer/mismatch.go); a leader that a majority
// of its voters report against steps down by itself. The forwarder exists
// before the stores (their config names it) and sends once the edge
// exists (its internal client).

// newMismatchForwarder returns the forwarder and sets it as cfg's
// mismatch callback.
func newMismatchForwarder(cfg *store.Config, reg prometheus.Registerer, log *slog.Logger) (*peer.Forwarder, error) {
	fc := peer.DefaultForwarderConfig()
	fc.Logger = log
	f, err := peer.NewForwarder(fc, reg)
	if err != nil {
		return nil, fmt.Errorf("checkpoint mismatch forwarder: %w", err)
	}
	cfg.OnCheckpointMismatch = f.Report
	return f, nil
}

// startMismatchForwarder sends f's reports through srv's internal client
// until the returned stop (idempotent) is called.
func startMismatchForwarder(f *peer.Forwarder, srv *api.Server) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, peer.New(srv.Core).SendMismatch)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}
