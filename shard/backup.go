package shard

import (
	"context"
	"fmt"

	"github.com/gsd-dev/gsd/store"
)

// BackupGroup takes a backup of group on this node, which must lead it: a
// cluster backup takes each group's snapshot from its leader, so that it
// holds every write acknowledged before it (store.Store.Backup). A group
// this node does not run or does not lead answers store.ErrNotLeader (and
// ErrUnknownGroup), so a client asks the next node.
func (b *Backend) BackupGroup(ctx context.Context, group uint64) (*store.Backup, error) {
	st, ok := b.r.mgr.Group(group)
	if !ok {
		return nil, fmt.Errorf("%w: group %d: %w", store.ErrNotLeader, group, ErrUnknownGroup)
	}
	if !st.IsLeader() {
		return nil, fmt.Errorf("%w: group %d's backup is taken on its leader", store.ErrNotLeader, group)
	}
	return st.Backup(ctx)
}
