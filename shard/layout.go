package shard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// A node's data directory holds one directory per group:
//
//	<data-dir>/groups/<group id>/raft.db, events.db, snapshots/
//
// Before shards, the node's one group kept those files at the top of the
// data directory. MigrateLegacyLayout moves them to groups/0 once.

// groupsDir is the data directory's subdirectory of per-group directories.
const groupsDir = "groups"

// legacyFiles are the files and directories a Store keeps in its data
// directory (store.New), in the order MigrateLegacyLayout moves them:
// raft.db last, so that while it is still at the top the migration is
// unfinished, and a rerun completes it.
var legacyFiles = []string{"events.db", "snapshots", "raft.db"}

// GroupDir returns group's data directory under dataDir.
func GroupDir(dataDir string, group uint64) string {
	return filepath.Join(dataDir, groupsDir, strconv.FormatUint(group, 10))
}

// MigrateLegacyLayout moves a single-group data directory (raft.db,
// events.db and snapshots/ at its top, as gsd wrote before shards) to
// group 0's directory, and reports whether it moved anything. A directory
// already in the new layout, or empty, is left alone. It is safe to run
// again after a crash in the middle: the files still at the top move. A
// file present both at the top and in groups/0 is an error wrapping
// ErrLayout: which one holds the group's state is not for gsd to guess.
func MigrateLegacyLayout(dataDir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dataDir, "raft.db")); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("inspect data dir: %w", err)
	}
	dst := GroupDir(dataDir, 0)
	for _, name := range legacyFiles {
		if _, err := os.Lstat(filepath.Join(dst, name)); err == nil {
			if _, err := os.Lstat(filepath.Join(dataDir, name)); err == nil {
				return false, fmt.Errorf("%w: %s is both in %s and in %s", ErrLayout, name, dataDir, dst)
			}
		}
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return false, fmt.Errorf("migrate data dir: %w", err)
	}
	for _, name := range legacyFiles {
		err := os.Rename(filepath.Join(dataDir, name), filepath.Join(dst, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // moved by an earlier, interrupted run, or never written
		}
		if err != nil {
			return false, fmt.Errorf("migrate data dir: %w", err)
		}
	}
	// The renames are durable once both directories are.
	for _, d := range []string{dst, filepath.Dir(dst), dataDir} {
		if err := syncDir(d); err != nil {
			return false, fmt.Errorf("migrate data dir: %w", err)
		}
	}
	return true, nil
}

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
