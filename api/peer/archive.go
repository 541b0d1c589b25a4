package peer

import (
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
)

// Archive handles GET /internal/v1/worlds/{world}/archive?from=&limit=,
// through which a node whose event archive lost a range (a corrupt file
// replaced after a crash, a snapshot install) fetches it from this one:
// an edge.ArchivePage of the events this node holds from seq from on.
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
	ar, ok := p.Backend().(edge.ArchiveReader)
	if !ok {
		p.WriteError(w, fmt.Errorf("%w: this node serves no event archive", fsm.ErrNotSupported), false)
		return
	}
	first, recs, err := ar.ArchiveRecords(world, from, limit, edge.ArchivePageBytes)
	if err != nil {
		p.WriteError(w, err, false)
		return
	}
	if recs == nil {
		recs = [][]byte{}
	}
	p.WriteJSON(w, http.StatusOK, edge.ArchivePage{World: world, From: first, Events: recs})
}
