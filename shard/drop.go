package shard

import (
	"context"
	"fmt"
	"os"
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
