package admin

import (
	"bytes"
	"context"
	"encoding/json"
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

// groupBackupSource is a backend of several groups (shard.Backend) that
// streams one group's snapshot when this node leads that group.
type groupBackupSource interface {
	BackupGroup(ctx context.Context, group uint64) (*store.Backup, error)
}

// leaderSource is a one-group backend (store.Store) that says whether it
// leads its group.
type leaderSource interface {
	IsLeader() bool
}

// Backup handles GET /v1/cluster/backup (admin): a snapshot of this
// node's group, as this node takes it, streamed as its bytes (never
// forwarded: on the leader it holds every acknowledged write; on a
// follower, what that follower applied). Taking the snapshot is bounded by
// the request timeout; streaming it is not. With ?group=ID it is a
// cluster backup's part (backupGroup).
func (a *API) Backup(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has(wire.QueryBackupGroup) {
		a.backupGroup(w, r)
		return
	}
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

// backupGroup answers GET /v1/cluster/backup?group=ID: the snapshot of
// group ID, only from its leader (a node that does not lead it, or does
// not run it, answers not_leader, so a client tries the next node), with
// the group's worlds at the snapshot in a trailer (wire.TrailerBackupWorlds).
// The worlds are read from the bytes sent: a scratch FSM restores them as
// they stream (which also checks every world's hash), so the node holds
// the snapshot's bytes and a second copy of the group's state meanwhile.
func (a *API) backupGroup(w http.ResponseWriter, r *http.Request) {
	group, err := strconv.ParseUint(r.URL.Query().Get(wire.QueryBackupGroup), 10, 64)
	if err != nil {
		a.WriteError(w, fmt.Errorf("%w: group %q: not a group id", fsm.ErrMalformed, r.URL.Query().Get(wire.QueryBackupGroup)), false)
		return
	}
	ctx, cancel := a.RequestContext(r)
	b, err := a.leaderBackup(ctx, group)
	cancel()
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	defer b.Body.Close()
	node := a.Backend().Status().ID
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gsd-group%d-%d.backup"`, group, b.Index))
	h.Set("Trailer", wire.TrailerBackupWorlds)
	h.Set(wire.HeaderBackupGroup, strconv.FormatUint(group, 10))
	h.Set(wire.HeaderBackupSize, strconv.FormatInt(b.Size, 10))
	h.Set(wire.HeaderBackupIndex, strconv.FormatUint(b.Index, 10))
	h.Set(wire.HeaderBackupTerm, strconv.FormatUint(b.Term, 10))
	h.Set(wire.HeaderBackupNode, node)
	w.WriteHeader(http.StatusOK)
	// The status goes out now: a stream cut off later is then a broken
	// body to the client, never an unanswered request it would retry.
	_ = http.NewResponseController(w).Flush()

	pr, pw := io.Pipe()
	type summary struct {
		worlds []wire.BackupWorld
		err    error
	}
	done := make(chan summary, 1)
	go func() {
		worlds, err := backupWorlds(pr)
		done <- summary{worlds, err}
	}()
	n, err := io.Copy(w, io.TeeReader(b.Body, pw))
	if err == nil && n != b.Size {
		err = fmt.Errorf("sent %d of %d bytes", n, b.Size)
	}
	pw.CloseWithError(err) // nil: EOF
	s := <-done
	if err == nil && s.err != nil {
		err = fmt.Errorf("read the worlds of the backup: %w", s.err)
	}
	if err != nil {
		// The status is out: break the connection so the client cannot
		// take a short body or one without its worlds for a whole backup.
		a.Log().Warn("backup stream broken", "group", group, "index", b.Index, "sent", n, "size", b.Size, "err", err)
		panic(http.ErrAbortHandler)
	}
	list, err := json.Marshal(s.worlds)
	if err != nil {
		panic(http.ErrAbortHandler) // []BackupWorld always encodes
	}
	h.Set(wire.TrailerBackupWorlds, string(list))
}

// leaderBackup takes group's snapshot on its leader.
func (a *API) leaderBackup(ctx context.Context, group uint64) (*store.Backup, error) {
	switch src := a.Backend().(type) {
	case groupBackupSource:
		return src.BackupGroup(ctx, group)
	case backupSource:
		if group != 0 {
			return nil, fmt.Errorf("%w: group %d: this node runs one group, 0 (no shard map)", fsm.ErrNotFound, group)
		}
		if l, ok := src.(leaderSource); !ok || !l.IsLeader() {
			return nil, fmt.Errorf("%w: a group's backup is taken on its leader", store.ErrNotLeader)
		}
		return src.Backup(ctx)
	}
	return nil, fmt.Errorf("%w: this node's backend cannot stream backups", fsm.ErrNotSupported)
}

// backupWorlds reads a snapshot to its end and lists its worlds.
func backupWorlds(r io.Reader) ([]wire.BackupWorld, error) {
	data, err := io.ReadAll(r) // to the end whatever happens: the writer waits on it
	if err != nil {
		return nil, err
	}
	f, err := fsm.New(store.DefaultConfig().FSM)
	if err != nil {
		return nil, err
	}
	if err := f.Restore(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	worlds := f.Worlds()
	out := make([]wire.BackupWorld, 0, len(worlds))
	for _, wi := range worlds {
		out = append(out, wire.BackupWorld{ID: wi.ID, Seq: wi.Seq, Index: wi.Index, Hash: wire.Hash(wire.HashString(wi.Hash)), Incarnation: wi.Incarnation})
	}
	return out, nil
}
