package shard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

func storeLogger() *slog.Logger {
	if os.Getenv("GSD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testStoreConfig is a group template with short timeouts for loopback
// clusters, without fsync.
func testStoreConfig(id string) store.Config {
	cfg := store.DefaultConfig()
	cfg.ID = id
	cfg.HTTPAddr = "http-" + id + ":80"
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	cfg.ElectionTimeout = 300 * time.Millisecond
	cfg.LeaderLeaseTimeout = 150 * time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	cfg.SnapshotInterval = time.Hour
	cfg.NoSync = true
	cfg.Logger = storeLogger()
	return cfg
}

// groupMux starts a Mux on a loopback port, closed at the test's end.
func groupMux(t testing.TB) *Mux {
	t.Helper()
	cfg := DefaultMuxConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = storeLogger()
	m, err := NewMux(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// newTestManager runs a Manager for node id in dir over mux, closed at the
// test's end (before the mux: cleanups run last-in first-out).
func newTestManager(t testing.TB, id, dir string, mux *Mux) *Manager {
	t.Helper()
	m, err := NewManager(ManagerConfig{DataDir: dir, Store: testStoreConfig(id)}, mux, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	return addr
}

// bootGroups opens each of ids on m as a group m's node bootstraps alone,
// and waits until each is a ready leader.
func bootGroups(t testing.TB, m *Manager, ids ...uint64) map[uint64]*store.Store {
	t.Helper()
	out := make(map[uint64]*store.Store, len(ids))
	for _, g := range ids {
		st, err := m.Open(g, GroupOptions{Bootstrap: true})
		require.NoError(t, err)
		waitLeader(t, st)
		out[g] = st
	}
	return out
}

// waitLeader waits until st leads and has applied its leader barrier, so
// that it serves actions (store.Store.Act refuses before).
func waitLeader(t testing.TB, st *store.Store) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return st.ReadBarrier(ctx) == nil
	}, 10*time.Second, 5*time.Millisecond, "not a ready leader")
}

// mustCreateWorld creates world on st, retrying while the new leader is
// not ready yet. A world that exists on a retry was created by an earlier
// attempt whose answer timed out (tests create each world once).
func mustCreateWorld(t testing.TB, st *store.Store, world string) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := st.CreateWorld(ctx, world, fsm.Rules{})
		return err == nil || errors.Is(err, fsm.ErrWorldExists)
	}, 10*time.Second, 10*time.Millisecond, "create world %s", world)
}

func incr(world, player string, seq uint64, entity string) *fsm.Action {
	return &fsm.Action{World: world, Player: player, Seq: seq,
		Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: entity, Field: "score", By: 1}}}
}

// act runs one action on st and requires it applied.
func act(t testing.TB, st *store.Store, a *fsm.Action) *fsm.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, _, err := st.Act(ctx, a)
	require.NoError(t, err)
	require.Equal(t, fsm.StatusApplied, ev.Status)
	return ev
}
