package shard

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

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

// GroupArchiveRecords serves world's archived events from this node's
// replica of group, whichever group the map places world on: what
// another node refilling its replica of group fetches (api/peer's archive
// route with the group named). A group this node does not run is not
// supported here: the asking node asks the group's other voters.
func (b *Backend) GroupArchiveRecords(group uint64, world string, from uint64, limit, maxBytes int) (uint64, [][]byte, error) {
	st, ok := b.r.mgr.Group(group)
	if !ok {
		return 0, nil, fmt.Errorf("%w: this node does not run group %d: %w", fsm.ErrNotSupported, group, ErrUnknownGroup)
	}
	return st.ArchiveRecords(world, from, limit, maxBytes)
}

// ArchiveStatus is the archive status of every group this node runs,
// added up (api/admin's GET /v1/node/archive): every group's missing
// ranges (each names its world), the counts summed, the oldest of their
// last checks (zero while a group has not been checked yet: the node's
// archive as a whole has not been), and each group's last refill error
// after its id.
func (b *Backend) ArchiveStatus() store.ArchiveStatus {
	out := store.ArchiveStatus{Missing: []store.Range{}}
	for i, st := range b.stores() {
		out = addArchiveStatus(out, i == 0, st.GroupID(), st.ArchiveStatus())
	}
	return out
}

// addArchiveStatus adds group g's status s to sum (first: sum holds no
// group's yet). The sum's check time does not depend on the order the
// groups are added in: the oldest, or zero once any group's is.
func addArchiveStatus(sum store.ArchiveStatus, first bool, g uint64, s store.ArchiveStatus) store.ArchiveStatus {
	sum.Missing = append(sum.Missing, s.Missing...)
	sum.MissingEvents += s.MissingEvents
	sum.Refilled += s.Refilled
	sum.Refused += s.Refused
	for k, v := range s.Verified {
		if sum.Verified == nil {
			sum.Verified = map[string]uint64{}
		}
		sum.Verified[k] += v
	}
	if first || s.Checked.IsZero() || (!sum.Checked.IsZero() && s.Checked.Before(sum.Checked)) {
		sum.Checked = s.Checked
	}
	if s.Error != "" {
		sum.Error = strings.TrimPrefix(sum.Error+"; ", "; ") + fmt.Sprintf("group %d: %s", g, s.Error)
	}
	return sum
}

// CheckArchive checks the archive of every group this node runs now.
func (b *Backend) CheckArchive() ([]store.Range, error) {
	var out []store.Range
	var errs []error
	for _, st := range b.stores() {
		r, err := st.CheckArchive() // its errors name the world
		out = append(out, r...)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// RefillNow wakes the refiller of every group this node runs.
func (b *Backend) RefillNow() {
	for _, st := range b.stores() {
		st.RefillNow()
	}
}

// stores returns the Stores of the groups this node runs, by id.
func (b *Backend) stores() []*store.Store {
	var out []*store.Store
	for _, g := range b.r.mgr.Groups() {
		if st, ok := b.r.mgr.Group(g); ok {
			out = append(out, st)
		}
	}
	return out
}
