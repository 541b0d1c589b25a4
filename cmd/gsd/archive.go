package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/pflag"
)

// archiveOptions are the event archive refill's flags (issue 15): a node
// whose archive lost a range (a corrupt file replaced after a crash, a
// snapshot install) fetches it from the other nodes and checks it against
// its audit tree before it stores it (docs/OPERATIONS.md).
type archiveOptions struct {
	refillInterval time.Duration
}

func (a *archiveOptions) flags(f *pflag.FlagSet) {
	f.DurationVar(&a.refillInterval, "archive-refill-interval", time.Minute, "how often the node checks its event archive for missing ranges and refills them from other nodes, verified against its audit tree (0: never refill; the archive is still checked at start)")
}

func (a *archiveOptions) check() error {
	if a.refillInterval < 0 {
		return usageError{errors.New("--archive-refill-interval must not be negative")}
	}
	return nil
}

// refillGroup is one of the node's groups as its archive refiller sees
// it: the group's Store, how pages of it are fetched from other nodes,
// and which nodes hold a replica of it (nil: its node table).
type refillGroup struct {
	st      *store.Store
	peers   store.RefillPeers
	members func() []fsm.NodeInfo
}

// start runs a refiller for every group groups returns (every group the
// node runs: a shard map's groups too), fetching through each group's
// peers and verifying with aud's trees (nil: two peers' equal answers
// only), until the returned stop is called (a no-op when refill is off;
// idempotent). groups is asked again every interval: a group opened
// since (the meta group placed a shard here) gets its refiller then, and
// a closed group's stops.
func (a *archiveOptions) start(groups func() []refillGroup, aud *auditor.Auditor, log *slog.Logger) func() {
	if a.refillInterval <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		running := map[*store.Store]func(){}
		defer func() {
			for _, stop := range running {
				stop()
			}
		}()
		t := time.NewTicker(a.refillInterval)
		defer t.Stop()
		for {
			seen := map[*store.Store]bool{}
			for _, g := range groups() {
				seen[g.st] = true
				if running[g.st] == nil {
					running[g.st] = a.run(g, aud, log)
				}
			}
			for st, stop := range running {
				if !seen[st] {
					stop()
					delete(running, st)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// run runs g's refiller until the returned stop is called.
func (a *archiveOptions) run(g refillGroup, aud *auditor.Auditor, log *slog.Logger) func() {
	cfg := store.DefaultRefillConfig()
	cfg.Peers, cfg.Members, cfg.Interval = g.peers, g.members, a.refillInterval
	if aud != nil {
		// One per group: the auditor's trees are keyed by world name,
		// and a name's tree may be another incarnation's than the one
		// this group holds (the world moved away from group 0, which
		// keeps its fenced copy and tree, then was deleted and created
		// again here). The verifier uses a tree only when its
		// incarnation is this group's world's; otherwise the events
		// fall back to two peers' equal answers.
		cfg.Verifier = auditVerifier{aud: aud, world: g.st.World, salts: g.st.Salts}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.st.RunRefill(ctx, cfg); err != nil {
			log.Error("event archive refiller not started", "group", g.st.GroupID(), "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// groupArchives fetches archive pages, by the world's group in the
// answering node's map or from the group named (api/edge.Core).
type groupArchives interface {
	store.RefillPeers
	FetchGroupArchive(ctx context.Context, group uint64, node fsm.NodeInfo, world string, from uint64, max int) ([]*fsm.Event, error)
}

// groupPeers fetch the pages of one group from other nodes' replicas of
// it, by name: a shard's refill never reads another group's events (a
// world moved away, or a map that places it elsewhere), and a node from
// before group addressing is refused, not used (store.ErrNotServed).
type groupPeers struct {
	fetch groupArchives
	group uint64
}

func (p groupPeers) FetchArchive(ctx context.Context, node fsm.NodeInfo, world string, from uint64, max int) ([]*fsm.Event, error) {
	return p.fetch.FetchGroupArchive(ctx, p.group, node, world, from, max)
}

// auditVerifier checks refilled events against this node's audit tree of
// their world: each event's frozen leaf by an inclusion proof against the
// tree's root. The tree is the node's own, built from the events it
// applied and kept in its own file (audit.db), apart from the archive.
// Events past the tree, or of a world without one, are left to the
// refiller's second-peer check. There is one per group's refiller
// (archiveOptions.run): a tree verifies only the incarnation of its world
// that the refilling group holds.
type auditVerifier struct {
	aud *auditor.Auditor
	// world is the refilling group's world (store.World): a tree of
	// another incarnation (a same-named world on another group, or one
	// deleted since) verifies none of its events.
	world func(world string) (fsm.WorldInfo, error)
	// salts is a salted world's salt table on this node (store.Salts):
	// the refilled events' salted ids are checked against it.
	salts func(world string) ([]fsm.Salt, uint64, error)
}

func (v auditVerifier) VerifyRefill(world string, evs []*fsm.Event) (int, error) {
	l, err := v.aud.Log(world)
	if err != nil {
		return 0, nil // no tree here: not verifiable by it
	}
	if w, err := v.world(world); err != nil || w.Incarnation != l.Incarnation() {
		return 0, nil // the tree is of another incarnation than the group's world
	}
	cp, err := l.Checkpoint()
	if err != nil {
		return 0, nil // its hashes cannot be read: not verifiable by it
	}
	ws := make([]*wire.Event, len(evs))
	for i, e := range evs {
		w := e.Wire()
		ws[i] = &w
	}
	if l.LeafVersion() != wire.AuditLeafV2 {
		return l.VerifyEvents(cp, ws...)
	}
	n, salted := v.saltings(world, evs)
	return l.VerifySaltedEvents(cp, ws[:n], salted)
}

// saltings returns a salted world's events' salted ids (fsm.Event.Salted)
// up to the first event whose ids this node's salt table does not
// confirm: a leaf commits to an id's HMAC, not to the id, so a peer could
// otherwise pass off another name under a player's HMAC. An event whose
// salt was erased or drawn again since cannot be confirmed either; it and
// the rest are left to the refiller's second-peer check.
func (v auditVerifier) saltings(world string, evs []*fsm.Event) (int, []wire.SaltedIDs) {
	table, _, err := v.salts(world)
	if err != nil {
		return 0, nil
	}
	keys := make(map[string][]byte, len(table))
	for i := range table {
		keys[table[i].Player] = table[i].Key[:]
	}
	out := make([]wire.SaltedIDs, 0, len(evs))
	for i, e := range evs {
		if e.Salted != nil {
			for _, n := range e.Salted.Names {
				k, ok := keys[n.Name]
				if !ok || wire.SaltedID(k, n.Name) != n.Digest {
					return i, out
				}
			}
		}
		out = append(out, e.Salted.Lookup)
	}
	return len(evs), out
}
