package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// backupSource is a backend that can stream its group's snapshot
// (store.Store); the interface lives here, where it is used, so the
// edge's Backend stays as it is.
type backupSource interface {
	Backup(ctx context.Context) (*store.Backup, error)
}

// Backup handles GET /v1/cluster/backup (admin): a snapshot of this
// node's group, as this node takes it, streamed as its bytes (never
// forwarded: on the leader it holds every acknowledged write; on a
// follower, what that follower applied). Taking the snapshot is bounded by
// the request timeout; streaming it is not.
func (a *API) Backup(w http.ResponseWriter, r *http.Request) {
	src, ok := a.Backend().(backupSource)
	if !ok {
		a.WriteError(w, fmt.Errorf("%w: this node's backend cannot stream backups", fsm.ErrNotSupported), false)
		return
	}
	ctx, cancel := a.RequestContext(r)
	b, err := src.Backup(ctx)
	cancel()
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	defer b.Body.Close()
	node := a.Backend().Status().ID
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(b.Size, 10))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gsd-%s-%d.backup"`, node, b.Index))
	h.Set(wire.HeaderBackupIndex, strconv.FormatUint(b.Index, 10))
	h.Set(wire.HeaderBackupTerm, strconv.FormatUint(b.Term, 10))
	h.Set(wire.HeaderBackupNode, node)
	w.WriteHeader(http.StatusOK)
	if n, err := io.Copy(w, b.Body); err != nil || n != b.Size {
		// The status is out: break the connection so the client cannot
		// take a short body for a whole backup.
		a.Log().Warn("backup stream broken", "index", b.Index, "sent", n, "size", b.Size, "err", err)
		panic(http.ErrAbortHandler)
	}
}
