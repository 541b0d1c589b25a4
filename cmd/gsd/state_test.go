package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
)

func writeBolt(t *testing.T, path string, fill func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	require.NoError(t, db.Update(fill))
	require.NoError(t, db.Close())
}

func TestRaftState(t *testing.T) {
	t.Run("no raft.db", func(t *testing.T) {
		hasDB, hasState, err := raftState(t.TempDir())
		require.NoError(t, err)
		require.False(t, hasDB)
		require.False(t, hasState)
	})
	t.Run("empty raft.db", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "raft.db"), nil, 0o600))
		hasDB, hasState, err := raftState(dir)
		require.NoError(t, err)
		require.True(t, hasDB)
		require.False(t, hasState)
	})
	t.Run("buckets without state", func(t *testing.T) {
		dir := t.TempDir()
		writeBolt(t, filepath.Join(dir, "raft.db"), func(tx *bbolt.Tx) error {
			if _, err := tx.CreateBucket([]byte("logs")); err != nil {
				return err
			}
			_, err := tx.CreateBucket([]byte("conf"))
			return err
		})
		hasDB, hasState, err := raftState(dir)
		require.NoError(t, err)
		require.True(t, hasDB)
		require.False(t, hasState)
	})
	t.Run("a term", func(t *testing.T) {
		dir := t.TempDir()
		writeBolt(t, filepath.Join(dir, "raft.db"), func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("conf"))
			if err != nil {
				return err
			}
			return b.Put([]byte("CurrentTerm"), binary.BigEndian.AppendUint64(nil, 3))
		})
		_, hasState, err := raftState(dir)
		require.NoError(t, err)
		require.True(t, hasState)
	})
	t.Run("log entries", func(t *testing.T) {
		dir := t.TempDir()
		writeBolt(t, filepath.Join(dir, "raft.db"), func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("logs"))
			if err != nil {
				return err
			}
			return b.Put(binary.BigEndian.AppendUint64(nil, 1), []byte("x"))
		})
		_, hasState, err := raftState(dir)
		require.NoError(t, err)
		require.True(t, hasState)
	})
	t.Run("a snapshot", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "raft.db"), nil, 0o600))
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "snapshots", "2-10-1"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "snapshots", "2-10-1", "meta.json"), []byte("{}"), 0o600))
		_, hasState, err := raftState(dir)
		require.NoError(t, err)
		require.True(t, hasState)
	})
	t.Run("a corrupt raft.db", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "raft.db"), bytes.Repeat([]byte("x"), 8192), 0o600))
		_, _, err := raftState(dir)
		require.ErrorContains(t, err, "raft.db")
	})
	t.Run("a data dir in use", func(t *testing.T) {
		dir := t.TempDir()
		db, err := bbolt.Open(filepath.Join(dir, "raft.db"), 0o600, nil)
		require.NoError(t, err)
		defer db.Close()
		_, _, err = raftState(dir)
		require.ErrorContains(t, err, "in use by another process")
	})
	t.Run("an unreadable data dir", func(t *testing.T) {
		_, _, err := raftState(string([]byte{0}))
		require.Error(t, err)
	})
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "warn", "json")
	require.NoError(t, err)
	log.Info("hidden")
	log.Warn("shown")
	require.NotContains(t, buf.String(), "hidden")
	require.Contains(t, buf.String(), `"msg":"shown"`)
}
