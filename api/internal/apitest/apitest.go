// Package apitest holds what the tests of the edge's packages share: fixed
// events for golden frames, a core over a backend, and a one-node store.
// Tests only.
package apitest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// QuietLogger discards everything.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Config is edge.DefaultConfig with a quiet logger.
func Config() edge.Config {
	cfg := edge.DefaultConfig()
	cfg.Logger = QuietLogger()
	return cfg
}

// Node is a backend that can say who leads its group: a store, or a
// test's fake.
type Node interface {
	edge.Backend
	edge.LeaderGroup
}

// Unused is a backend for tests that never call it: any call panics.
type Unused struct{ Node }

// Core is a core over b, routed by the single-group router, with cfg
// (Config() when nil) and its metrics in a fresh registry.
func Core(t testing.TB, b Node, cfg *edge.Config) *edge.Core {
	t.Helper()
	c := Config()
	if cfg != nil {
		c = *cfg
	}
	core, err := edge.NewCore(c, b, edge.NewSingleGroupRouter(b), prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(core.Close)
	return core
}

// StartStore starts a one-node store, waits for it to lead, and closes it
// in t.Cleanup.
func StartStore(t testing.TB) *store.Store {
	t.Helper()
	st, _ := StartStoreOn(t, "n1", true, "127.0.0.1:1", nil)
	require.Eventually(t, st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	return st
}

// StartStoreOn starts a store with id that advertises httpAddr,
// bootstrapping a one-node cluster when asked, with short timeouts and no
// fsync; its metrics go to reg (a fresh registry when nil). It closes in
// t.Cleanup. It returns the store and its Raft address.
func StartStoreOn(t testing.TB, id string, bootstrap bool, httpAddr string, reg *prometheus.Registry) (*store.Store, string) {
	t.Helper()
	return StartStoreWith(t, id, bootstrap, httpAddr, reg, nil)
}

// StartStoreWith is StartStoreOn with adjust, when not nil, changing the
// store's config before it starts (the versions a node reads, say).
func StartStoreWith(t testing.TB, id string, bootstrap bool, httpAddr string, reg *prometheus.Registry, adjust func(*store.Config)) (*store.Store, string) {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.ID = id
	cfg.Dir = t.TempDir()
	cfg.RaftAddr = FreeAddr(t)
	cfg.HTTPAddr = httpAddr
	cfg.Bootstrap = bootstrap
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	cfg.NoSync = true
	cfg.Logger = QuietLogger()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if adjust != nil {
		adjust(&cfg)
	}
	st, err := store.New(cfg, reg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, st.Close(ctx))
	})
	return st, cfg.RaftAddr
}

// FreeAddr returns a loopback address with a port nobody listens on:
// raft's TCP transport needs a concrete port to advertise.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	return addr
}

// GoldenFrameEvents make, from position 10, a critical events frame, bulk
// moves that coalesce into one delta (a later value wins, a delete), a
// bulk set-policy add that goes as an event, a rejection that goes to
// nobody and a critical conflict.
func GoldenFrameEvents() []*fsm.Event {
	evs := []*fsm.Event{
		{Seq: 11, Player: "bob", Priority: fsm.PriorityCritical, Changes: []fsm.Change{{Entity: "boss", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-5), Version: 11}}},
		{Seq: 12, Player: "ann", Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "ann", Field: "x", Op: fsm.OpSet, Value: fsm.Float(1.5), Version: 12},
			{Entity: "ann", Field: "name", Op: fsm.OpSet, Value: fsm.String("Ann \"A\""), Version: 12}}},
		{Seq: 13, Player: "ann", Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "ann", Field: "x", Op: fsm.OpSet, Value: fsm.Int(3), Version: 13},
			{Entity: "ann", Field: "up", Op: fsm.OpSet, Value: fsm.Bool(true), Version: 13}}},
		{Seq: 14, Player: "cid", Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "cid", Op: fsm.OpDelete, Version: 9}}},
		{Seq: 15, Player: "ann", Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "ann", Field: "tags", Op: fsm.OpAdd, Value: fsm.String("red"), Version: 15}}},
		{Seq: 16, Player: "ann", Priority: fsm.PriorityBulk, Status: fsm.StatusRejected, Reason: fsm.CodeTypeMismatch},
		{Seq: 17, Player: "bob", Priority: fsm.PriorityCritical, Status: fsm.StatusConflict, Changes: []fsm.Change{
			{Entity: "boss", Field: "hp", Value: fsm.Int(40), Version: 11, Exists: true}, {Entity: "boss", Field: "loot", Set: []fsm.Value{fsm.String("axe")}, Version: 3, Exists: true}}},
	}
	for _, ev := range evs {
		ev.World, ev.Index, ev.Time = "arena", 900+ev.Seq, 1_700_000_000_000_000_000+int64(ev.Seq)
		if ev.Status == 0 {
			ev.Status = fsm.StatusApplied
		}
	}
	return evs
}
