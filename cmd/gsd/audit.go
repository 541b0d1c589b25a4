package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/anticheat/audit/boltstore"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// auditFile is the audit trees' bolt file in the data dir.
const auditFile = "audit.db"

// auditOptions are the audit log's flags. Every node keeps the trees;
// only a node given a key signs checkpoints.
type auditOptions struct {
	keyFiles     []string
	signInterval time.Duration
}

func (a *auditOptions) flags(f *pflag.FlagSet) {
	f.StringArrayVar(&a.keyFiles, "audit-key", nil, "private audit key file (gsdctl audit keygen) that signs every world's audit checkpoints; give it twice during a key rotation (see docs/ANTICHEAT.md)")
	f.DurationVar(&a.signInterval, "audit-sign-interval", 10*time.Second, "how often each world whose audit log grew gets a new signed checkpoint (0: the default)")
}

// signers reads the key files.
func (a *auditOptions) signers() ([]note.Signer, error) {
	if a.signInterval < 0 {
		return nil, usageError{errors.New("--audit-sign-interval must not be negative")}
	}
	var out []note.Signer
	for _, f := range a.keyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, usageError{fmt.Errorf("--audit-key: %w", err)}
		}
		k, err := audit.ParseSigningKey(string(b))
		if err != nil {
			return nil, usageError{fmt.Errorf("--audit-key %s: %w", f, err)}
		}
		out = append(out, k)
	}
	return out, nil
}

// start opens the audit trees' file in dir and runs the node's auditor
// over st, or under a shard map over every group of this node (groups,
// not nil; stores lists them), until the returned stop is called
// (idempotent).
func (a *auditOptions) start(dir string, st *store.Store, groups *shard.FeedSource, stores func() []*store.Store, reg prometheus.Registerer, log *slog.Logger) (*auditor.Auditor, func(), error) {
	signers, err := a.signers()
	if err != nil {
		return nil, nil, err
	}
	// No fsync per write: the trees are derived from the event archive,
	// which holds what a lost write needs again (see docs/ANTICHEAT.md);
	// the file is synced when the auditor stops.
	db, err := bbolt.Open(filepath.Join(dir, auditFile), 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return nil, nil, fmt.Errorf("audit log file: %w", err)
	}
	cfg := auditor.DefaultConfig()
	cfg.Signers, cfg.Logger = signers, log.With("component", "audit")
	if a.signInterval > 0 {
		cfg.SignInterval = a.signInterval
	}
	settle := &settling{log: cfg.Logger}
	var src auditor.Source = storeSource{st: st, settle: settle}
	if groups != nil {
		src = groupsSource{FeedSource: groups, stores: stores, settle: settle}
	}
	aud, err := auditor.New(cfg, src, boltstore.NewTrees(db))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	if err := registerAuditMetrics(reg, aud, settle); err != nil {
		db.Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); aud.Run(ctx) }()
	if len(signers) > 0 {
		log.Info("audit checkpoints signed", "keys", len(signers), "interval", cfg.SignInterval)
	}
	var once sync.Once
	return aud, func() {
		once.Do(func() {
			cancel()
			<-done
			if err := errors.Join(db.Sync(), db.Close()); err != nil {
				log.Error("audit log file close", "err", err)
			}
		})
	}, nil
}

// registerAuditMetrics publishes the auditor's figures and its groups'
// replay wait, read at each scrape.
func registerAuditMetrics(reg prometheus.Registerer, aud *auditor.Auditor, settle *settling) error {
	gauge := func(name, help string, f func(auditor.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(aud.Stats()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("gsd_audit_worlds", "Worlds whose audit log this node keeps and follows (of every group it runs).", func(s auditor.Stats) float64 { return float64(s.Worlds) }),
		gauge("gsd_audit_worlds_stalled", "Worlds whose audit log stopped following the feed (an archive gap; retried every second).",
			func(s auditor.Stats) float64 { return float64(s.Stalled) }),
		gauge("gsd_audit_events", "Events in this node's audit logs, all worlds together.", func(s auditor.Stats) float64 { return float64(s.Events) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gsd_audit_checkpoints_signed_total", Help: "Audit checkpoints this node signed."},
			func() float64 { return float64(aud.Stats().Signed) }),
		gauge("gsd_audit_settled", "1 once the auditor trusts this node's world list (its groups replayed their logs; under a shard map, the map has shards); 0 while it follows and buries nothing.",
			func(s auditor.Stats) float64 {
				if s.Settled {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gsd_audit_groups_unsettled", Help: "Groups of this node whose worlds the auditor does not follow yet: they have not applied their log up to where it was at start (a group without a leader stays here)."},
			func() float64 { return float64(settle.unsettled()) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("audit metrics: %w", err)
		}
	}
	return nil
}

// storeSource is the auditor's view of the node's one group.
type storeSource struct {
	st     *store.Store
	settle *settling
}

func (s storeSource) Settled() bool { return s.settle.settled([]replayer{s.st}) }

func (s storeSource) Worlds() []fsm.WorldInfo { return s.st.Worlds() }

func (s storeSource) Subscribe(world string, from uint64) (fanout.Subscription, error) {
	return auditFeed(s.st.Subscribe(world, from))
}

// auditFeed returns a group's subscription as the auditor's, or err (never an
// interface holding a nil pointer).
func auditFeed[S fanout.Subscription](sub S, err error) (fanout.Subscription, error) {
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// groupsSource is the auditor's view of a node under a shard map: the
// worlds of every group the node runs, each followed on the group the map
// places it on, across its moves (shard.FeedSource reads a moved world's
// events before the fence from its old home, or from the new home's copy
// of them). It is an auditor.Placement (FeedSource's Home and Away): a
// world moved between two groups of the node is followed on its new
// home, one moved to a group the node does not run keeps its tree
// without a tombstone.
type groupsSource struct {
	*shard.FeedSource
	stores func() []*store.Store // the node's groups
	settle *settling
}

// Settled: the map is known. Each group's worlds are listed once that
// group applied its log (Worlds), so one group that cannot (no quorum)
// holds back the audit of its own worlds only: under a shard map the
// auditor buries nothing for a world missing from the list (Deleted).
func (s groupsSource) Settled() bool {
	s.settle.settled(replayers(s.stores()))
	return s.Placed()
}

func (s groupsSource) Subscribe(world string, from uint64) (fanout.Subscription, error) {
	return auditFeed(s.FeedSource.Subscribe(world, from))
}

// Worlds lists the worlds of every group of the node but the sinks'
// positions world (feed.PositionsWorld): every group has one of its own,
// each a different incarnation under the same name, while a tree is one
// world incarnation's, so following the one the map happens to place
// would bury the trees of the others (a node's tree of group 0's from
// before it had a shard map). It is the sinks' bookkeeping, not play.
//
// A world whose group has not applied its log yet (settling) is left out
// too: its state may be older than the node's (a snapshot's).
func (s groupsSource) Worlds() []fsm.WorldInfo {
	s.settle.settled(replayers(s.stores()))
	return slices.DeleteFunc(s.FeedSource.Worlds(), func(w fsm.WorldInfo) bool {
		if s.skip(w.ID) {
			return true
		}
		st, err := s.FeedSource.Group(w.ID)
		return err != nil || !s.settle.groupSettled(st)
	})
}

// Away: a world moved to a group this node does not run, or the sinks'
// positions world (not followed, not deleted).
func (s groupsSource) Away(world string, inc uint64) bool {
	return s.skip(world) || s.FeedSource.Away(world, inc)
}

// skip reports the worlds the auditor leaves out under a shard map.
func (groupsSource) skip(world string) bool { return world == feed.PositionsWorld }

// settling tells when each of a node's groups has applied the log it
// held when first looked at (the auditor's Settler): after a restart a
// group lists the worlds created since its last snapshot only once it
// replayed its log, and the auditor must not take a world missing until
// then for one deleted while the node was down (it would write it a
// tombstone). The wait ends at the group's last index now when that is
// lower (a tail a new leader truncated never applies). A group that hears
// no leader applies nothing: it stays unsettled, which the auditor's
// gsd_audit_groups_unsettled gauge and a log line every
// auditor.WaitLogEvery show.
type settling struct {
	mu      sync.Mutex
	last    map[replayer]uint64 // each group's last log index when first seen
	done    map[replayer]bool
	waiting int // groups not settled at the last look
	log     *slog.Logger
	logged  time.Time
	who     string // the log line's subject and verb ("audit waits" when empty)
}

// replayer is one group's replica as settling reads it (*store.Store).
type replayer interface {
	LastIndex() uint64
	Status() store.Status
}

func replayers(groups []*store.Store) []replayer {
	out := make([]replayer, len(groups))
	for i, st := range groups {
		out[i] = st
	}
	return out
}

// settled reports whether every one of groups has settled.
func (s *settling) settled(groups []replayer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last, s.done = make(map[replayer]uint64), make(map[replayer]bool)
	}
	s.waiting = 0
	var applied, target uint64
	for _, st := range groups {
		if s.done[st] {
			continue
		}
		last, ok := s.last[st]
		if !ok {
			last = st.LastIndex()
			s.last[st] = last
		}
		want := min(last, st.LastIndex())
		if got := st.Status().AppliedIndex; got < want {
			s.waiting++
			applied, target = got, want
			continue
		}
		s.done[st] = true
	}
	if s.waiting > 0 && time.Since(s.logged) >= auditor.WaitLogEvery {
		s.logged = time.Now()
		who := cmp.Or(s.who, "audit waits")
		s.log.Warn(who+" for groups of this node to replay their logs before following their worlds (a group that hears no leader stays here)",
			"groups", s.waiting, "applied", applied, "target", target)
	}
	return s.waiting == 0
}

// groupSettled reports whether st settled at the last look.
func (s *settling) groupSettled(st replayer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[st]
}

// unsettled is how many groups had not settled at the last look.
func (s *settling) unsettled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}
