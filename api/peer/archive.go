package peer

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
)

// Archive handles GET /internal/v1/worlds/{world}/archive?from=&limit=,
// through which a node whose event archive lost a range (a corrupt file
// replaced after a crash, a snapshot install) fetches it from this one:
// an edge.ArchivePage of the events this node holds from seq from on.
// A request that names a group (edge.HeaderGroup) reads this node's
// replica of that group (a shard's refill), and the page names it back.
// Only nodes of the cluster call it; the caller verifies every event
// against its audit tree before it stores one (store.RunRefill).
func (p *API) Archive(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	if err := edge.CheckName("world", world); err != nil {
		p.WriteError(w, err, false)
		return
	}
	from, limit, err := edge.ParseArchivePage(r.URL.Query())
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	group := r.Header.Get(edge.HeaderGroup)
	first, recs, err := p.archiveRecords(group, world, from, limit)
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	if recs == nil {
		recs = [][]byte{}
	}
	p.WriteJSON(w, http.StatusOK, edge.ArchivePage{Group: group, World: world, From: first, Events: recs})
}

// archiveRecords reads the page from the replica of group when the
// request names one (a shard's refill: the same Raft group it refills),
// else from the group this node's map places world on.
func (p *API) archiveRecords(group, world string, from uint64, limit int) (uint64, [][]byte, error) {
	if group == "" {
		ar, ok := p.Backend().(edge.ArchiveReader)
		if !ok {
			return 0, nil, fmt.Errorf("%w: this node serves no event archive", fsm.ErrNotSupported)
		}
		return ar.ArchiveRecords(world, from, limit, edge.ArchivePageBytes)
	}
	g, err := strconv.ParseUint(group, 10, 64)
	if err != nil || strconv.FormatUint(g, 10) != group {
		return 0, nil, fmt.Errorf("%w: group must be a shard id, got %q", fsm.ErrMalformed, group)
	}
	ar, ok := p.Backend().(edge.GroupArchiveReader)
	if !ok {
		return 0, nil, fmt.Errorf("%w: this node serves no event archive by group", fsm.ErrNotSupported)
	}
	return ar.GroupArchiveRecords(g, world, from, limit, edge.ArchivePageBytes)
}
