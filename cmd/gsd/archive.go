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

// start runs st's refiller, fetching through peers and verifying with
// aud's trees (nil: two peers' equal answers only), until the returned
// stop is called (a no-op when refill is off; idempotent).
func (a *archiveOptions) start(st *store.Store, peers store.RefillPeers, aud *auditor.Auditor, log *slog.Logger) func() {
	if a.refillInterval <= 0 {
		return func() {}
	}
	cfg := store.DefaultRefillConfig()
	cfg.Peers, cfg.Interval = peers, a.refillInterval
	if aud != nil {
		cfg.Verifier = auditVerifier{aud: aud, salts: st.Salts}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := st.RunRefill(ctx, cfg); err != nil {
			log.Error("event archive refiller not started", "err", err)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// auditVerifier checks refilled events against this node's audit tree of
// their world: each event's frozen leaf by an inclusion proof against the
// tree's root. The tree is the node's own, built from the events it
// applied and kept in its own file (audit.db), apart from the archive.
// Events past the tree, or of a world without one, are left to the
// refiller's second-peer check.
type auditVerifier struct {
	aud *auditor.Auditor
	// salts is a salted world's salt table on this node (store.Salts):
	// the refilled events' salted ids are checked against it.
	salts func(world string) ([]fsm.Salt, uint64, error)
}

func (v auditVerifier) VerifyRefill(world string, evs []*fsm.Event) (int, error) {
	l, err := v.aud.Log(world)
	if err != nil {
		return 0, nil // no tree here: not verifiable by it
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
