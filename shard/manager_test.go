package shard

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func touch(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(filepath.Base(path)), 0o600))
}

func TestMigrateLegacyLayout(t *testing.T) {
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }
	t.Run("empty data dir is left alone", func(t *testing.T) {
		dir := t.TempDir()
		moved, err := MigrateLegacyLayout(dir)
		require.NoError(t, err)
		require.False(t, moved)
		require.NoDirExists(t, filepath.Join(dir, "groups"))
	})
	t.Run("new layout is left alone", func(t *testing.T) {
		dir := t.TempDir()
		touch(t, filepath.Join(GroupDir(dir, 0), "raft.db"))
		moved, err := MigrateLegacyLayout(dir)
		require.NoError(t, err)
		require.False(t, moved)
	})
	t.Run("single-group files move to group 0", func(t *testing.T) {
		dir := t.TempDir()
		for _, f := range []string{"raft.db", "events.db", "snapshots/1-2-3/meta.json", "cpu.pprof"} {
			touch(t, filepath.Join(dir, f))
		}
		moved, err := MigrateLegacyLayout(dir)
		require.NoError(t, err)
		require.True(t, moved)
		g0 := GroupDir(dir, 0)
		for _, f := range []string{"raft.db", "events.db", "snapshots/1-2-3/meta.json"} {
			require.False(t, exists(filepath.Join(dir, f)), f)
			require.True(t, exists(filepath.Join(g0, f)), f)
		}
		require.True(t, exists(filepath.Join(dir, "cpu.pprof")), "files that are not the group's stay")
		moved, err = MigrateLegacyLayout(dir)
		require.NoError(t, err)
		require.False(t, moved, "a second run finds nothing to move")
	})
	t.Run("an interrupted migration completes", func(t *testing.T) {
		dir := t.TempDir()
		touch(t, filepath.Join(GroupDir(dir, 0), "events.db")) // moved before the crash
		touch(t, filepath.Join(dir, "snapshots", "x"))
		touch(t, filepath.Join(dir, "raft.db"))
		moved, err := MigrateLegacyLayout(dir)
		require.NoError(t, err)
		require.True(t, moved)
		require.True(t, exists(filepath.Join(GroupDir(dir, 0), "raft.db")))
		require.True(t, exists(filepath.Join(GroupDir(dir, 0), "snapshots", "x")))
		require.False(t, exists(filepath.Join(dir, "raft.db")))
	})
	t.Run("a file in both places is refused", func(t *testing.T) {
		dir := t.TempDir()
		touch(t, filepath.Join(dir, "raft.db"))
		touch(t, filepath.Join(dir, "events.db"))
		touch(t, filepath.Join(GroupDir(dir, 0), "events.db"))
		_, err := MigrateLegacyLayout(dir)
		require.ErrorIs(t, err, ErrLayout)
		require.True(t, exists(filepath.Join(dir, "raft.db")), "nothing moved")
	})
	t.Run("an unreadable data dir is an error", func(t *testing.T) {
		dir := t.TempDir()
		touch(t, filepath.Join(dir, "file"))
		_, err := MigrateLegacyLayout(filepath.Join(dir, "file"))
		require.Error(t, err)
	})
}

// A data directory written by a single-group node (store.Store on the
// top of the data dir, its own TCP listener: gsd before shards) opens as
// the Manager's group 0 with the same state.
func TestManagerOpensASingleGroupDataDirWithItsState(t *testing.T) {
	dir := t.TempDir()
	cfg := testStoreConfig("n1")
	cfg.Dir, cfg.RaftAddr, cfg.Bootstrap = dir, freeAddr(t), true
	old, err := store.New(cfg, nil)
	require.NoError(t, err)
	waitLeader(t, old)
	mustCreateWorld(t, old, "w")
	for seq := uint64(1); seq <= 3; seq++ {
		act(t, old, incr("w", "p", seq, "e"))
	}
	ctx := context.Background()
	before, err := old.Entity(ctx, "w", "e", store.Linearizable)
	require.NoError(t, err)
	require.NoError(t, old.Close(ctx))
	require.FileExists(t, filepath.Join(dir, "raft.db"))

	m := newTestManager(t, "n1", dir, groupMux(t))
	require.NoFileExists(t, filepath.Join(dir, "raft.db"))
	st, err := m.Open(0, GroupOptions{})
	require.NoError(t, err)
	waitLeader(t, st)
	var after fsm.EntityView
	require.Eventually(t, func() bool {
		after, err = st.Entity(ctx, "w", "e", store.Linearizable)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, before, after)
	require.Equal(t, uint64(3), after.Seq)
	ev := act(t, st, incr("w", "p", 4, "e"))
	require.Equal(t, uint64(4), ev.Seq, "the world's seq continues")
}

// A rolling upgrade: a node running the single-group layout on a plain
// raft TCP transport (an older gsd) and nodes running group 0 over a
// Manager's mux form one group, and leadership moves between them.
func TestManagerGroupZeroJoinsAClusterOnPlainTCP(t *testing.T) {
	ctx := context.Background()
	cfg := testStoreConfig("n1")
	cfg.Dir, cfg.RaftAddr, cfg.Bootstrap = t.TempDir(), freeAddr(t), true
	old, err := store.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = old.Close(context.Background()) })
	waitLeader(t, old)
	nodes := []*store.Store{old}
	var muxes []*Mux
	for _, id := range []string{"n2", "n3"} {
		mux := groupMux(t)
		st, err := newTestManager(t, id, t.TempDir(), mux).Open(0, GroupOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			// The joiner reports what it reads, as gsd's --join does: the
			// version gate refuses a joiner below its members' floor.
			return leaderOf(nodes).Join(ctx, fsm.NodeInfo{ID: id, RaftAddr: mux.Addr().String(), HTTPAddr: "http-" + id + ":80", Versions: st.Versions()}) == nil
		}, 10*time.Second, 20*time.Millisecond)
		nodes = append(nodes, st)
		muxes = append(muxes, mux)
	}
	mustCreateWorld(t, old, "arena")
	leaders := map[*store.Store]bool{}
	for seq := uint64(1); seq <= 3; seq++ {
		var l *store.Store
		require.Eventually(t, func() bool { l = leaderOf(nodes); return l != nil }, 10*time.Second, 5*time.Millisecond)
		leaders[l] = true
		var ev *fsm.Event
		require.Eventually(t, func() bool {
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var err error
			ev, _, err = l.Act(c, incr("arena", "p", seq, "e"))
			return err == nil
		}, 10*time.Second, 10*time.Millisecond)
		requireSameHash(t, nodes, "arena", ev.Seq)
		require.NoError(t, l.TransferLeadership(ctx))
	}
	require.GreaterOrEqual(t, len(leaders), 2, "leadership moved between the old and the new transport")
	for _, m := range muxes {
		require.Positive(t, m.Stats().Legacy, "group 0's connections carry no header")
		require.Zero(t, m.Stats().Grouped)
	}
}

func leaderOf(nodes []*store.Store) *store.Store {
	for _, s := range nodes {
		if s.IsLeader() {
			return s
		}
	}
	return nil
}

// requireSameHash waits until every node has applied world up to seq and
// requires their state hashes there to be equal.
func requireSameHash(t testing.TB, nodes []*store.Store, world string, seq uint64) {
	t.Helper()
	var want fsm.HashPoint
	for i, s := range nodes {
		var got fsm.HashPoint
		require.Eventually(t, func() bool {
			var err error
			got, err = s.Hash(world, seq)
			return err == nil
		}, 10*time.Second, 10*time.Millisecond, "node %d has no hash at %s/%d", i, world, seq)
		if i == 0 {
			want = got
		}
		require.Equal(t, want, got, "node %d differs at %s/%d", i, world, seq)
	}
}

func TestManagerRunsGroupsSideBySide(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	a, err := m.Open(1, GroupOptions{Bootstrap: true})
	require.NoError(t, err)
	b, err := m.Open(2, GroupOptions{Bootstrap: true})
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, m.Groups())
	_, err = m.Open(1, GroupOptions{})
	require.ErrorIs(t, err, ErrGroupTaken)
	got, ok := m.Group(2)
	require.True(t, ok)
	require.Same(t, b, got)

	waitLeader(t, a)
	waitLeader(t, b)
	mustCreateWorld(t, a, "wa")
	mustCreateWorld(t, b, "wb")
	act(t, a, incr("wa", "p", 1, "e"))
	require.Len(t, a.Worlds(), 1, "a group holds only its own worlds")
	require.Equal(t, "wa", a.Worlds()[0].ID)
	require.DirExists(t, filepath.Join(GroupDir(m.cfg.DataDir, 1), "snapshots"))

	require.NoError(t, m.CloseGroup(ctx, 2))
	require.ErrorIs(t, m.CloseGroup(ctx, 2), ErrUnknownGroup)
	_, ok = m.Group(2)
	require.False(t, ok)
	act(t, a, incr("wa", "p", 2, "e"))

	b, err = m.Open(2, GroupOptions{})
	require.NoError(t, err, "a closed group opens again from its data")
	waitLeader(t, b)
	require.Eventually(t, func() bool { return len(b.Worlds()) == 1 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, m.Close(ctx))
	require.Empty(t, m.Groups())
	_, err = m.Open(3, GroupOptions{})
	require.ErrorIs(t, err, ErrClosed)
}

func TestManagerOpenFailureReleasesTheGroup(t *testing.T) {
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	_, err := m.Open(1, GroupOptions{Bootstrap: true, Voters: []raft.Server{{ID: "other", Address: "127.0.0.1:1"}}})
	require.ErrorContains(t, err, "does not name this node")
	st, err := m.Open(1, GroupOptions{Bootstrap: true})
	require.NoError(t, err, "the group's mux layer was released")
	waitLeader(t, st)
}

func TestManagerConfigValidate(t *testing.T) {
	good := ManagerConfig{DataDir: t.TempDir(), Store: testStoreConfig("n1")}
	require.NoError(t, good.Validate())
	for name, tweak := range map[string]func(*ManagerConfig){
		"no data dir":   func(c *ManagerConfig) { c.DataDir = "" },
		"no node id":    func(c *ManagerConfig) { c.Store.ID = "" },
		"no logger":     func(c *ManagerConfig) { c.Store.Logger = nil },
		"own raft addr": func(c *ManagerConfig) { c.Store.RaftAddr = "127.0.0.1:1" },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			tweak(&c)
			require.Error(t, c.Validate())
			_, err := NewManager(c, nil, nil)
			require.Error(t, err)
		})
	}
	_, err := NewManager(good, nil, nil)
	require.ErrorContains(t, err, "mux is required")
	dir := t.TempDir()
	touch(t, filepath.Join(dir, "raft.db"))
	touch(t, filepath.Join(GroupDir(dir, 0), "raft.db"))
	_, err = NewManager(ManagerConfig{DataDir: dir, Store: testStoreConfig("n1")}, groupMux(t), nil)
	require.ErrorIs(t, err, ErrLayout)
}

// A group other than the membership group learns what a node reads from
// the membership group's node table on this node.
func TestManagerTakesNodeVersionsFromTheMembershipGroup(t *testing.T) {
	m, err := NewManager(ManagerConfig{DataDir: t.TempDir(), Store: testStoreConfig("n1"), Membership: 1}, groupMux(t), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	_, ok := m.nodeVersions("n1")
	require.False(t, ok, "no membership group yet")
	home, err := m.Open(1, GroupOptions{Bootstrap: true})
	require.NoError(t, err)
	waitLeader(t, home)
	require.Eventually(t, func() bool {
		v, ok := m.nodeVersions("n1")
		return ok && v == fsm.Supported()
	}, 10*time.Second, 10*time.Millisecond, "the leader records its own versions in the node table")
	_, ok = m.nodeVersions("n9")
	require.False(t, ok)
}
