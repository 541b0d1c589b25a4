package apitest

import "github.com/gsd-dev/gsd/store"

// ReportMismatch takes a checkpoint mismatch report as a leader that is
// not its checkpoint's proposer would: it ignores it (store.Store's rule
// for another leader's checkpoint). A Fake that does not lead refuses it.
func (f *Fake) ReportMismatch(store.CheckpointMismatch) (bool, error) {
	if !f.LeaderFlag.Load() {
		return false, store.ErrNotLeader
	}
	return false, nil
}
