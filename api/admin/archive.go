package admin

import (
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// archiveChecker is what the archive routes need of the backend:
// *store.Store. A backend without it answers not_supported.
type archiveChecker interface {
	ArchiveStatus() store.ArchiveStatus
	CheckArchive() ([]store.Range, error)
	RefillNow()
}

func (a *API) archive(w http.ResponseWriter) (archiveChecker, bool) {
	c, ok := a.Backend().(archiveChecker)
	if !ok {
		a.WriteError(w, fmt.Errorf("%w: this node keeps no event archive", fsm.ErrNotSupported), false)
	}
	return c, ok
}

// ArchiveStatus handles GET /v1/node/archive: what this node's event
// archive lacks as of its last check (missing ranges and events) and
// what refills did since it started (store.ArchiveStatus).
func (a *API) ArchiveStatus(w http.ResponseWriter, r *http.Request) {
	if c, ok := a.archive(w); ok {
		a.WriteJSON(w, http.StatusOK, c.ArchiveStatus())
	}
}

// CheckArchive handles POST /v1/node/archive:check: the archive is
// checked now, the answer is its status, and a running refiller starts
// refilling what it lacks at once.
func (a *API) CheckArchive(w http.ResponseWriter, r *http.Request) {
	c, ok := a.archive(w)
	if !ok {
		return
	}
	if _, err := c.CheckArchive(); err != nil {
		a.WriteError(w, err, false)
		return
	}
	c.RefillNow()
	a.WriteJSON(w, http.StatusOK, c.ArchiveStatus())
}
