//go:build !gsd_failpoints

package store

import (
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// FailpointsEnabled is false in normal builds: the disk-fault failpoints
// (store/failpoint.go) exist only with -tags gsd_failpoints.
const FailpointsEnabled = false

// withFailpoints returns the stores unchanged: Raft gets raft-boltdb's store
// and the file snapshot store themselves, and the archive has no hook.
func withFailpoints(_ *Store, ls *raftboltdb.BoltStore, snaps raft.SnapshotStore) (raft.LogStore, raft.StableStore, raft.SnapshotStore) {
	return ls, ls, snaps
}
