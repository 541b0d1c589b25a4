package boltstore

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/mod/sumdb/tlog"
)

func openDB(t *testing.T, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// openTree opens world's tree of incarnation 0.
func openTree(db *bbolt.DB, world string) (audit.HashStore, error) {
	return NewTrees(db).Open(world, 0)
}

// worldBucket is world's bucket of incarnations.
func worldBucket(tx *bbolt.Tx, world string) *bbolt.Bucket {
	return tx.Bucket(treesBucket).Bucket([]byte(world))
}

func events(world string, from, to uint64) []*wire.Event {
	var out []*wire.Event
	for s := from; s <= to; s++ {
		out = append(out, &wire.Event{World: world, Seq: s, Player: fmt.Sprintf("p%d", s%4), Priority: "critical", Status: "applied"})
	}
	return out
}

func TestALogOnDiskReopensWithItsRoot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	db := openDB(t, path)
	s, err := openTree(db, "arena")
	require.NoError(t, err)
	l, err := audit.Open("arena", s)
	require.NoError(t, err)
	require.NoError(t, l.Append(events("arena", 1, 7)...))
	require.NoError(t, l.Append(events("arena", 8, 30)...))
	want, err := l.Checkpoint()
	require.NoError(t, err)

	// Another world in the same file stays apart.
	other, err := openTree(db, "lobby")
	require.NoError(t, err)
	lobby, err := audit.Open("lobby", other)
	require.NoError(t, err)
	require.NoError(t, lobby.Append(events("lobby", 1, 3)...))
	require.NoError(t, db.Close())

	db = openDB(t, path)
	s, err = openTree(db, "arena")
	require.NoError(t, err)
	l, err = audit.Open("arena", s)
	require.NoError(t, err)
	require.Equal(t, int64(30), l.Size())
	got, err := l.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, want, got)

	// The same tree as in memory, and proofs from disk check.
	mem, err := audit.Open("arena", &audit.MemStore{})
	require.NoError(t, err)
	require.NoError(t, mem.Append(events("arena", 1, 30)...))
	memCP, err := mem.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, memCP, got)
	p, err := l.ProveInclusion(12, 30)
	require.NoError(t, err)
	require.NoError(t, tlog.CheckRecord(p, 30, got.Root, 11, audit.LeafHash(events("arena", 12, 12)[0])))
}

func TestStoreRefusesWhatNoLogWrites(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "audit.db"))
	_, err := openTree(db, "")
	require.Error(t, err)
	s, err := openTree(db, "arena")
	require.NoError(t, err)
	require.ErrorContains(t, s.AppendHashes(1, []tlog.Hash{{1}}), "append at 1, 0 stored")
	require.NoError(t, s.AppendHashes(0, []tlog.Hash{{1}}))
	_, err = s.ReadHashes([]int64{1})
	require.ErrorIs(t, err, audit.ErrCorrupt)

	// A key that is not an index.
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		return worldBucket(tx, "arena").Bucket(incKey(0)).Put([]byte{0xff}, []byte("x"))
	}))
	_, err = s.Count()
	require.ErrorIs(t, err, audit.ErrCorrupt)
	require.ErrorIs(t, s.AppendHashes(1, nil), audit.ErrCorrupt)

	// A world's name, or its incarnation, taken by a plain key.
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(treesBucket).Put([]byte("taken"), []byte("x")) }))
	_, err = openTree(db, "taken")
	require.Error(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return worldBucket(tx, "arena").Put(incKey(9), []byte("x")) }))
	_, err = NewTrees(db).Open("arena", 9)
	require.Error(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return worldBucket(tx, "arena").Put([]byte("odd"), []byte("x")) }))
	_, err = NewTrees(db).Incarnations("arena")
	require.ErrorIs(t, err, audit.ErrCorrupt)
	// A tombstone's world taken by a plain key.
	require.NoError(t, NewTrees(db).PutTombstone("lobby", 1, "x"))
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(tombstoneBucket).Put([]byte("taken"), []byte("x")) }))
	require.Error(t, NewTrees(db).PutTombstone("taken", 1, "x"))

	// The buckets deleted under the store.
	for _, del := range []func(tx *bbolt.Tx) error{
		func(tx *bbolt.Tx) error { return worldBucket(tx, "arena").DeleteBucket(incKey(0)) },
		func(tx *bbolt.Tx) error { return tx.Bucket(treesBucket).DeleteBucket([]byte("arena")) },
		func(tx *bbolt.Tx) error { return tx.DeleteBucket(treesBucket) },
	} {
		require.NoError(t, db.Update(del))
		for _, err := range []error{
			func() error { _, err := s.Count(); return err }(),
			func() error { _, err := s.ReadHashes([]int64{0}); return err }(),
			s.AppendHashes(0, nil),
		} {
			require.ErrorIs(t, err, audit.ErrCorrupt)
		}
	}
}

func TestStoreReportsAClosedFile(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "audit.db"))
	s, err := openTree(db, "arena")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = openTree(db, "arena")
	require.ErrorIs(t, err, berrors.ErrDatabaseNotOpen)
	_, err = NewTrees(db).Incarnations("arena")
	require.ErrorIs(t, err, berrors.ErrDatabaseNotOpen)
	_, err = NewTrees(db).Tombstone("arena", 0)
	require.ErrorIs(t, err, berrors.ErrDatabaseNotOpen)
	_, err = NewTrees(db).Worlds()
	require.ErrorIs(t, err, berrors.ErrDatabaseNotOpen)
	require.ErrorIs(t, NewTrees(db).PutTombstone("arena", 0, "x"), berrors.ErrDatabaseNotOpen)
	_, err = s.Count()
	require.ErrorIs(t, err, berrors.ErrDatabaseNotOpen)
	_, err = s.ReadHashes([]int64{0})
	require.ErrorIs(t, err, berrors.ErrDatabaseNotOpen)
	require.ErrorIs(t, s.AppendHashes(0, nil), berrors.ErrDatabaseNotOpen)
}
