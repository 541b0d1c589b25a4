package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

func TestEachIncarnationKeepsATreeAndATombstoneOfItsOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	db := openDB(t, path)
	trees := NewTrees(db)
	incs, err := trees.Incarnations("arena")
	require.NoError(t, err)
	require.Empty(t, incs)
	worlds, err := trees.Worlds()
	require.NoError(t, err)
	require.Empty(t, worlds)
	for _, inc := range []uint64{5, 300} {
		s, err := trees.Open("arena", inc)
		require.NoError(t, err)
		l, err := audit.OpenIncarnation("arena", inc, s)
		require.NoError(t, err)
		require.Zero(t, l.Size(), "a new incarnation starts an empty tree")
		require.NoError(t, l.Append(events("arena", 1, 4+inc%7)...))
	}
	text, err := trees.Tombstone("arena", 5)
	require.NoError(t, err)
	require.Empty(t, text)
	require.NoError(t, trees.PutTombstone("arena", 5, "arena\n9\nroot\n"))
	require.NoError(t, db.Close())

	db = openDB(t, path)
	trees = NewTrees(db)
	incs, err = trees.Incarnations("arena")
	require.NoError(t, err)
	require.Equal(t, []uint64{5, 300}, incs)
	worlds, err = trees.Worlds()
	require.NoError(t, err)
	require.Equal(t, []string{"arena"}, worlds)
	text, err = trees.Tombstone("arena", 5)
	require.NoError(t, err)
	require.Equal(t, "arena\n9\nroot\n", text)
	text, err = trees.Tombstone("lobby", 5)
	require.NoError(t, err)
	require.Empty(t, text)
	for inc, size := range map[uint64]int64{5: 9, 300: 10} {
		s, err := trees.Open("arena", inc)
		require.NoError(t, err)
		l, err := audit.OpenIncarnation("arena", inc, s)
		require.NoError(t, err)
		require.Equal(t, size, l.Size())
	}
}

func TestAFileFromBeforeIncarnationsIsAdoptedByTheWorldsCurrentOne(t *testing.T) {
	// A file as the store wrote it before incarnations: gsd.audit, world,
	// the hashes.
	path := filepath.Join(t.TempDir(), "audit.db")
	db := openDB(t, path)
	mem := &audit.MemStore{}
	l, err := audit.Open("arena", mem)
	require.NoError(t, err)
	require.NoError(t, l.Append(events("arena", 1, 13)...))
	want, err := l.Checkpoint()
	require.NoError(t, err)
	count, err := mem.Count()
	require.NoError(t, err)
	hs, err := mem.ReadHashes(func() []int64 {
		var idx []int64
		for i := range count {
			idx = append(idx, i)
		}
		return idx
	}())
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucket(legacyBucket)
		require.NoError(t, err)
		b, err := top.CreateBucket([]byte("arena"))
		require.NoError(t, err)
		for i, h := range hs {
			require.NoError(t, b.Put(incKey(uint64(i)), h[:]))
		}
		return nil
	}))
	require.NoError(t, db.Close())

	db = openDB(t, path)
	trees := NewTrees(db)
	s, err := trees.Open("arena", 77)
	require.NoError(t, err)
	got, err := audit.OpenIncarnation("arena", 77, s)
	require.NoError(t, err)
	cp, err := got.Checkpoint()
	require.NoError(t, err)
	want.Incarnation = 77
	require.Equal(t, want, cp)
	require.NoError(t, got.Append(events("arena", 14, 15)...))
	require.NoError(t, db.View(func(tx *bbolt.Tx) error {
		require.Nil(t, tx.Bucket(legacyBucket).Bucket([]byte("arena")), "moved, not copied")
		return nil
	}))
	// A later incarnation starts empty; the adopted one stays.
	s, err = trees.Open("arena", 90)
	require.NoError(t, err)
	n, err := s.Count()
	require.NoError(t, err)
	require.Zero(t, n)
	incs, err := trees.Incarnations("arena")
	require.NoError(t, err)
	require.Equal(t, []uint64{77, 90}, incs)
}

// TestATreesLeafVersionIsKeptAcrossAReopen: a salted tree's leaf version
// outlives the process, so a deleted incarnation reopens as what it was.
func TestATreesLeafVersionIsKeptAcrossAReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	db := openDB(t, path)
	trees := NewTrees(db)
	v, err := trees.LeafVersion("arena", 5)
	require.NoError(t, err)
	require.Zero(t, v, "none kept")
	require.NoError(t, trees.PutLeafVersion("arena", 5, 2))
	require.NoError(t, trees.PutLeafVersion("arena", 5, 2), "kept again: no change")
	require.NoError(t, db.Close())

	db = openDB(t, path)
	trees = NewTrees(db)
	v, err = trees.LeafVersion("arena", 5)
	require.NoError(t, err)
	require.Equal(t, byte(2), v)
	for w, inc := range map[string]uint64{"arena": 6, "lobby": 5} {
		v, err = trees.LeafVersion(w, inc)
		require.NoError(t, err)
		require.Zero(t, v, "%s incarnation %d", w, inc)
	}
	// A world taken by a plain key.
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(leafBucket).Put([]byte("taken"), []byte("x")) }))
	require.Error(t, trees.PutLeafVersion("taken", 1, 2))
	require.NoError(t, db.Close())
	_, err = trees.LeafVersion("arena", 5)
	require.Error(t, err)
}
