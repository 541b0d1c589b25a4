package main

import (
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit/boltstore"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

// testTrees returns audit trees in a bolt file of the test's own.
func testTrees(t *testing.T) *boltstore.Trees {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "audit.db"), 0o600, nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return boltstore.NewTrees(db)
}
