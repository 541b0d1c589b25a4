package shard

import "github.com/gsd-dev/gsd/store"

// ArchiveRecords serves world's archived events from this node's replica
// of its group: what another node refilling its archive fetches
// (api/peer's archive route, store.Store.ArchiveRecords).
func (b *Backend) ArchiveRecords(world string, from uint64, limit, maxBytes int) (uint64, [][]byte, error) {
	st, err := b.group(world)
	if err != nil {
		return 0, nil, err
	}
	return st.ArchiveRecords(world, from, limit, maxBytes)
}

// ArchiveStatus is the membership group's archive status (api/admin's
// archive routes answer for the node's first group, the one gsd refills).
func (b *Backend) ArchiveStatus() store.ArchiveStatus { return b.home.ArchiveStatus() }

// CheckArchive checks the membership group's archive now.
func (b *Backend) CheckArchive() ([]store.Range, error) { return b.home.CheckArchive() }

// RefillNow wakes the membership group's refiller.
func (b *Backend) RefillNow() { b.home.RefillNow() }
