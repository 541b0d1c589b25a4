package shard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DropGroup stops group on this node and deletes its data directory: the
// node no longer holds a replica of it (a voter replaced in every
// shard, shard/meta). Deleting the directory means a later re-add of
// the node starts the group clean, from the leader's snapshot and log,
// never with the old term and log it had. The membership group and the
// meta group are not dropped this way.
func (m *Manager) DropGroup(ctx context.Context, group uint64) error {
	if group == m.cfg.Membership || group == MetaGroup {
		return fmt.Errorf("drop group %d: the membership and meta groups are never dropped", group)
	}
	if err := m.CloseGroup(ctx, group); err != nil {
		return err
	}
	if err := os.RemoveAll(GroupDir(m.cfg.DataDir, group)); err != nil {
		return fmt.Errorf("drop group %d: %w", group, err)
	}
	return nil
}

// HasGroupData reports whether group's data directory exists on this node.
func (m *Manager) HasGroupData(group uint64) bool {
	_, err := os.Stat(GroupDir(m.cfg.DataDir, group))
	return err == nil
}

// DataDir returns group's data directory on this node (GroupDir under
// the Manager's data directory), whether it exists or not.
func (m *Manager) DataDir(group uint64) string { return GroupDir(m.cfg.DataDir, group) }

// SetAside moves the data directory of group, which this node must not
// run, to a sibling named "<group>.<suffix>" (with ".2", ".3", ... when
// that is taken), so the group opens clean next time, and returns the
// new path; "" when there was no directory. The data is kept for an
// operator to look at or delete: a joiner that finds a directory left
// from earlier (shard/meta) must not open it as its own.
func (m *Manager) SetAside(group uint64, suffix string) (string, error) {
	if suffix == "" || strings.ContainsAny(suffix, `/\`) {
		return "", fmt.Errorf("set aside group %d: bad suffix %q", group, suffix)
	}
	m.openMu.Lock()
	defer m.openMu.Unlock()
	if err := m.checkFree(group); err != nil {
		return "", fmt.Errorf("set aside group %d: %w", group, err)
	}
	dir := m.DataDir(group)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("set aside group %d: %w", group, err)
	}
	to := dir + "." + suffix
	for n := 2; ; n++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = fmt.Sprintf("%s.%s.%d", dir, suffix, n)
	}
	if err := os.Rename(dir, to); err != nil {
		return "", fmt.Errorf("set aside group %d: %w", group, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return "", fmt.Errorf("set aside group %d: %w", group, err)
	}
	return to, nil
}
