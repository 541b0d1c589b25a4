package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/peer"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// Healing a replica whose state differs from the majority's (issue 12,
// store/checkpoint_heal.go). With --checkpoint-heal, a leader that a
// follower's checkpoint mismatch report leaves in the majority asks the
// other voters for their hash at the checkpoint (a majority must confirm
// its own), removes the follower, sends it the heal order
// (api/peer/heal.go) and adds it again.
//
// Every node takes the order (it is an internal route: the cluster secret
// when set), for group 0: it stops like on SIGTERM, moves the group's
// Raft state and event archive (raft.db, snapshots/, events.db) into
// <group dir>.diverged-<time>/ for forensics, leaves an empty raft.db
// behind (so that the next start never bootstraps, even without --join:
// it waits to be added, and the leader has added it) and exits with
// exitHealed. A supervisor (systemd Restart=on-failure) starts it again;
// it then installs the majority's snapshot or replays its log. Restarting
// the group inside the running process would mean swapping the store
// under the edge, the sinks and the detectors: the exit is the simpler,
// crash-only path. Groups of a shard map other than 0 are bootstrapped
// from the map at start, so they are not healed in place yet: their order
// is refused (not_supported) and the leader adds the node back as it was.

// exitHealed is gsd's exit code after a heal order moved its group's data
// aside: restart it (EX_TEMPFAIL).
const exitHealed = 75

// errHealed is runNode's error after a heal order; run exits with
// exitHealed.
var errHealed = errors.New("checkpoint heal: this node's state differed from the majority's; its data was moved aside: restart it to rejoin empty")

// healer is one node's side of healing: it sends the orders of the groups
// this node leads (once the edge exists) and takes the orders for itself.
type healer struct {
	self   string
	log    *slog.Logger
	cancel context.CancelFunc // ends the node's run
	peer   atomic.Pointer[peer.API]
	marks  atomic.Pointer[store.Store] // group 0's, for the other voters' questions

	mu      sync.Mutex
	ordered bool
	leader  string
}

// newHealer returns the node's run context, which a heal order ends, and
// the healer.
func newHealer(ctx context.Context, self string, log *slog.Logger) (context.Context, *healer) {
	ctx, cancel := context.WithCancel(ctx)
	return ctx, &healer{self: self, log: log, cancel: cancel}
}

// apply turns healing on in the store config when on (--checkpoint-heal).
func (h *healer) apply(cfg *store.Config, on bool) {
	if on {
		cfg.HealReplica, cfg.ConfirmMark = h.send, h.ask
	}
}

// ask asks node for its mark (store.Config.ConfirmMark).
func (h *healer) ask(ctx context.Context, group uint64, node fsm.NodeInfo, world string, index uint64) (uint64, bool, error) {
	p := h.peer.Load()
	if p == nil {
		return 0, false, errors.New("ask for a mark: the node-to-node client is not started yet")
	}
	return p.AskMark(ctx, group, node, world, index)
}

// mark answers another node's question for this node's mark.
func (h *healer) mark(group uint64, world string, index uint64) (uint64, bool, error) {
	st := h.marks.Load()
	if group != 0 || st == nil {
		return 0, false, fmt.Errorf("%w: checkpoint marks of group %d: only group 0 heals in place", fsm.ErrNotSupported, group)
	}
	hash, known := st.CheckpointMark(world, index)
	return hash, known, nil
}

// send orders node to heal group (store.Config.HealReplica).
func (h *healer) send(ctx context.Context, group uint64, node fsm.NodeInfo) error {
	p := h.peer.Load()
	if p == nil {
		return errors.New("heal order: the node-to-node client is not started yet")
	}
	return p.SendHeal(ctx, group, node, h.self)
}

// take takes an order to heal group: the node's run ends, and finish
// moves the data aside.
func (h *healer) take(group uint64, leader string) error {
	if group != 0 {
		return fmt.Errorf("%w: healing group %d in place (a shard map's group): remove, wipe and add the node by hand (docs/OPERATIONS.md)", fsm.ErrNotSupported, group)
	}
	h.mu.Lock()
	first := !h.ordered
	h.ordered, h.leader = true, leader
	h.mu.Unlock()
	if first {
		h.log.Error("checkpoint heal order: this node's state differs from the majority's and the leader removed it; stopping to move the group's data aside", "leader", leader, "group", group)
		h.cancel()
	}
	return nil
}

// handler is srv's handler with the heal order's and the mark
// question's routes (under healPrefix, which no other route uses); st is
// group 0's store.
func (h *healer) handler(srv *api.Server, st *store.Store) http.Handler {
	p := peer.New(srv.Core)
	h.peer.Store(p)
	h.marks.Store(st)
	inner := http.NewServeMux()
	p.RegisterHeal(inner, h.self, h.take, h.mark)
	heal := srv.Core.Handler(inner) // the access checks, metrics and JSON errors of every route
	rest := srv.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, healPrefix) {
			heal.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// healPrefix starts the paths of the heal routes (api/peer/heal.go).
const healPrefix = edge.InternalPrefix + "/groups/"

// healedFiles are what a group's store keeps in its directory.
var healedFiles = []string{"raft.db", "events.db", "events.db.compact", "snapshots"}

// finish, after the node stopped, moves group 0's data in dir aside when
// an order came, and returns errHealed then.
func (h *healer) finish(dir string) error {
	h.mu.Lock()
	ordered := h.ordered
	h.mu.Unlock()
	if !ordered {
		return nil
	}
	aside, err := moveAside(dir, time.Now())
	if err != nil {
		return fmt.Errorf("checkpoint heal: %w", err)
	}
	h.log.Error("checkpoint heal: the group's data was moved aside; restart this node to rejoin empty", "moved_to", aside, "leader", h.leader)
	return errHealed
}

// moveAside moves the group's files in dir into dir.diverged-<now>/ and
// leaves an empty raft.db in dir; it returns the new directory.
func moveAside(dir string, now time.Time) (string, error) {
	aside := filepath.Clean(dir) + ".diverged-" + now.UTC().Format("20060102T150405.000000000Z")
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return "", fmt.Errorf("move the diverged data aside: %w", err)
	}
	for _, name := range healedFiles {
		err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("move the diverged data aside: %w", err)
		}
	}
	// An empty raft.db: the next start waits to be added, never
	// bootstraps a cluster of its own (raftState).
	f, err := os.OpenFile(filepath.Join(dir, "raft.db"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("leave an empty raft.db: %w", err)
	}
	return aside, f.Close()
}
