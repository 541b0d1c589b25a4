package auditor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/note"
)

// The package's errors.
var (
	// ErrNoKey: a signed checkpoint asked of a node that holds no audit key.
	ErrNoKey = errors.New("gsd/audit/auditor: no audit key configured on this node")
	// ErrStopped: the auditor is not running.
	ErrStopped = errors.New("gsd/audit/auditor: stopped")
	// ErrNotReady: a lookup of a world before the node's world list
	// settled (Settler): the node is still replaying its groups' logs.
	ErrNotReady = errors.New("gsd/audit/auditor: this node is still replaying its logs; its audit logs are not known yet, retry shortly")
)

// Source is what the auditor reads on one node: the worlds it holds and
// their committed feeds.
type Source interface {
	// Worlds lists the worlds this node knows.
	Worlds() []fsm.WorldInfo
	// Subscribe opens world's committed feed from seq from (inclusive).
	Subscribe(world string, from uint64) (fanout.Subscription, error)
}

// Stores keeps a node's trees, one per world incarnation, and the texts
// of deleted incarnations' tombstones (boltstore.Trees in the node's data
// dir).
type Stores interface {
	// Open returns the hash store of world's incarnation inc, creating it.
	Open(world string, inc uint64) (audit.HashStore, error)
	// Incarnations lists the incarnations of world with a stored tree.
	Incarnations(world string) ([]uint64, error)
	// Tombstone returns the text of the tombstone of world's incarnation
	// inc; "" when it has none.
	Tombstone(world string, inc uint64) (string, error)
	// PutTombstone keeps the text of the tombstone of world's incarnation inc.
	PutTombstone(world string, inc uint64, text string) error
	// Worlds lists the worlds with a stored tree.
	Worlds() ([]string, error)
	// LeafVersion returns the leaf version kept with world's incarnation
	// inc's tree; 0 when none was (version 1).
	LeafVersion(world string, inc uint64) (byte, error)
	// PutLeafVersion keeps the leaf version of world's incarnation inc's
	// tree, so that a node that restarts after the world's deletion
	// reopens (and buries) it as what it is.
	PutLeafVersion(world string, inc uint64, v byte) error
}

// Config configures an Auditor.
type Config struct {
	// Signers sign checkpoints: the node's audit key, or two during a
	// rotation. None: the node keeps the trees and serves proofs but signs
	// nothing.
	Signers []note.Signer
	// SignInterval is how often each world whose tree grew since its last
	// signed checkpoint is signed again.
	SignInterval time.Duration
	// ScanInterval is how often the node's world list is read for new
	// worlds, and a world whose feed failed is tried again.
	ScanInterval time.Duration
	// MaxBatch bounds the events appended (and written) at once.
	MaxBatch int
	// Logger receives the auditor's logs.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: no key, signing every 10 s.
func DefaultConfig() Config {
	return Config{SignInterval: 10 * time.Second, ScanInterval: time.Second, MaxBatch: 4096, Logger: slog.Default()}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.SignInterval <= 0 {
		errs = append(errs, errors.New("config.SignInterval must be > 0"))
	}
	if c.ScanInterval <= 0 {
		errs = append(errs, errors.New("config.ScanInterval must be > 0"))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, errors.New("config.MaxBatch must be > 0"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("config.Logger must be set"))
	}
	for i, s := range c.Signers {
		if s == nil {
			errs = append(errs, fmt.Errorf("config.Signers[%d] is nil", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("auditor config: %w", err)
	}
	return nil
}

// Auditor keeps the audit logs of a node's worlds. It is safe for
// concurrent use.
type Auditor struct {
	cfg    Config
	src    Source
	stores Stores
	log    *slog.Logger

	mu      sync.Mutex
	worlds  map[string]*world // the current incarnation of each world
	old     map[tree]*world   // deleted incarnations opened since New, and those kept aside (scan)
	ctx     context.Context   // Run's; nil before Run and after it returned
	wg      sync.WaitGroup
	signed  atomic.Uint64 // checkpoints signed
	settled atomic.Bool   // the source's world list is the node's (Settler)
}

// tree names one world incarnation's tree.
type tree struct {
	id  string
	inc uint64
}

// world is one world incarnation's log and its newest signed checkpoint.
type world struct {
	id  string
	inc uint64
	log *audit.Log // nil until its store opened

	mu         sync.Mutex
	signed     []byte // the newest signed checkpoint, a note
	signedSize int64
	recent     []signedAt // the newest signed checkpoints, for keyframes (recent.go)
	running    bool       // a follower goroutine is at work
	err        error      // why the last follower stopped
	last       [2]int64   // the log index and time of the last event logged
	home       uint64     // the group its follower reads (Placement), or 0
	stop       func()     // ends the running follower's feed
	away       bool       // not listed here, not known deleted (Placement): kept, not followed
	retired    bool       // deleted: its tombstone is written once the follower stopped
	tombstone  string     // its tombstone's text, once written
}

// New returns an Auditor of src's worlds, their trees kept in stores.
// Run starts it.
func New(cfg Config, src Source, stores Stores) (*Auditor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || stores == nil {
		return nil, errors.New("auditor: nil source or stores")
	}
	a := &Auditor{cfg: cfg, src: src, stores: stores, log: cfg.Logger, worlds: make(map[string]*world), old: make(map[tree]*world)}
	_, settles := src.(Settler)
	a.settled.Store(!settles)
	return a, nil
}

// Run follows every world's feed and signs checkpoints until ctx ends,
// then waits for its goroutines and returns.
func (a *Auditor) Run(ctx context.Context) {
	a.mu.Lock()
	a.ctx = ctx
	a.mu.Unlock()
	scan := time.NewTicker(a.cfg.ScanInterval)
	defer scan.Stop()
	sign := time.NewTicker(a.cfg.SignInterval)
	defer sign.Stop()
	buried := false
	var waitLogged time.Time
	for {
		if s, ok := a.src.(Settler); !ok || s.Settled() {
			a.settled.Store(true)
			if !buried {
				a.buryGone()
				buried = true
			}
			a.scan()
		} else if time.Since(waitLogged) >= WaitLogEvery {
			waitLogged = time.Now()
			a.log.Warn("audit waits for this node's world list: its groups have not replayed their logs yet, or its shard map has no shards; no world is followed or buried until then")
		}
		select {
		case <-ctx.Done():
			a.mu.Lock()
			a.ctx = nil
			a.mu.Unlock()
			a.wg.Wait()
			return
		case <-scan.C:
		case <-sign.C:
			a.signAll()
		}
	}
}

// follow opens the log of world info's incarnation if needed and starts
// its follower, reading group home's feed, unless one runs or the auditor
// is not running; a follower reading another group (the world moved
// between two groups of this node) is stopped, and the next scan starts
// it again. A world first seen since New gets tombstones for its older
// stored trees that have none (deleted while the node was down). A
// salted world's log has leaves of version 2.
func (a *Auditor) follow(info fsm.WorldInfo, home uint64) *world {
	id, inc, salted := info.ID, info.Incarnation, info.Salted
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.worlds[id]
	if w == nil {
		if kept := a.old[tree{id, inc}]; kept != nil && kept.keptAside() {
			w = kept // listed again: its tree goes on (one follower, one log per tree)
			delete(a.old, tree{id, inc})
		} else {
			w = &world{id: id, inc: inc}
			a.buryOlder(id, true, inc)
		}
		a.worlds[id] = w
	}
	if w.log == nil {
		l, err := a.open(id, inc, salted)
		if err != nil {
			w.mu.Lock()
			again := w.err != nil && w.err.Error() == err.Error()
			w.err = err
			w.mu.Unlock()
			if !again { // retried at every scan, logged once
				a.log.Error("audit log cannot be opened; retrying", "world", id, "err", err)
			}
			return w
		}
		w.log = l
	}
	if a.ctx == nil || a.ctx.Err() != nil {
		return w
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.away = false
	if w.running {
		if w.home != home {
			w.stop() // it moved: its follower's feed ends at the fence
		}
		return w
	}
	ctx, cancel := context.WithCancel(a.ctx)
	w.running, w.home, w.stop = true, home, cancel
	a.wg.Add(1)
	go a.run(ctx, cancel, w)
	return w
}

// open opens the log of world id's incarnation inc; a salted one's leaf
// version is kept with its tree (openOld reads it).
func (a *Auditor) open(id string, inc uint64, salted bool) (*audit.Log, error) {
	s, err := a.stores.Open(id, inc)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", id, err)
	}
	if salted {
		if err := a.stores.PutLeafVersion(id, inc, wire.AuditLeafV2); err != nil {
			return nil, fmt.Errorf("audit log %s: %w", id, err)
		}
		return audit.OpenSalted(id, inc, s)
	}
	return audit.OpenIncarnation(id, inc, s)
}

// openOld opens the log of world id's deleted incarnation inc with the
// leaf version kept with its tree, so that its tombstone and checkpoints
// say "leaf 2" when it was salted. A tree kept before leaf versions were
// (none stored) opens as version 1.
func (a *Auditor) openOld(id string, inc uint64) (*audit.Log, error) {
	v, err := a.stores.LeafVersion(id, inc)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", id, err)
	}
	return a.open(id, inc, v == wire.AuditLeafV2)
}

// run appends world's committed events to its log until ctx ends or the
// feed or the log fails (the next scan starts it again).
func (a *Auditor) run(ctx context.Context, cancel func(), w *world) {
	defer a.wg.Done()
	defer cancel() // its context's resources
	err := a.append(ctx, w)
	if ctx.Err() != nil || errors.Is(err, fsm.ErrUnknownWorld) {
		err = nil // stopped (or moved), or the world was deleted (the next scan retires it): not failed
	}
	w.mu.Lock()
	w.running = false
	again := err != nil && w.err != nil && w.err.Error() == err.Error()
	w.err = err
	bury := w.retired
	w.mu.Unlock()
	if bury {
		a.bury(w)
		return
	}
	if err != nil && !again { // a lasting failure (a gap) is logged once
		a.log.Error("audit log stopped following its world's feed; retrying", "world", w.id, "size", w.log.Size(), "err", err)
	}
}

func (a *Auditor) append(ctx context.Context, w *world) error {
	// Start at the last event logged when the feed still holds it: Append
	// checks it against its stored leaf (ErrDiverged), so a node whose
	// state went back to another history (restored from an older point)
	// stops here instead of logging a fork as if it continued the tree.
	from := uint64(w.log.Size()) + 1
	sub, err := a.src.Subscribe(w.id, max(from-1, 1))
	if err != nil {
		if sub, err = a.src.Subscribe(w.id, from); err != nil {
			return fmt.Errorf("subscribe from seq %d: %w", from, err)
		}
	}
	// A subscription opened after the world was deleted and created again
	// would feed the next incarnation's events to this one's tree. One
	// opened before a delete ends with fsm.ErrUnknownWorld, so the world
	// still at this incarnation now means the feed is this incarnation's.
	if !slices.ContainsFunc(a.src.Worlds(), func(info fsm.WorldInfo) bool { return info.ID == w.id && info.Incarnation == w.inc }) {
		return fmt.Errorf("%w: %s incarnation %d was deleted", fsm.ErrUnknownWorld, w.id, w.inc)
	}
	var conv converter
	for {
		evs, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		// Take what else is ready, so a busy world writes its hashes in
		// few transactions.
		for len(evs) < a.cfg.MaxBatch {
			more, err := sub.Next(ready)
			if err != nil {
				break
			}
			evs = append(evs, more...)
		}
		batch := conv.convert(evs)
		if err := w.log.AppendSalted(batch, conv.saltings(evs)); err != nil {
			return err
		}
		last := batch[len(batch)-1]
		w.mu.Lock()
		w.err = nil
		w.last = [2]int64{int64(last.Index), last.Time}
		w.mu.Unlock()
	}
}

// ready is a context that has ended: a Next with it returns what the feed
// holds already, or its error.
var ready = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Log returns world's audit log on this node: fsm.ErrUnknownWorld when
// this node holds no such world.
func (a *Auditor) Log(id string) (*audit.Log, error) {
	_, l, err := a.world(id)
	return l, err
}

// world returns the world of id with an open log, looking for a world
// created since the last scan.
func (a *Auditor) world(id string) (*world, *audit.Log, error) {
	a.mu.Lock()
	w := a.worlds[id]
	var l *audit.Log
	if w != nil {
		l = w.log
	}
	a.mu.Unlock()
	away := false
	if l != nil {
		w.mu.Lock()
		away = w.away
		w.mu.Unlock()
		if !away {
			return w, l, nil
		}
	}
	if !a.settled.Load() {
		return nil, nil, fmt.Errorf("%w (world %s)", ErrNotReady, id)
	}
	infos := a.src.Worlds()
	i := slices.IndexFunc(infos, func(info fsm.WorldInfo) bool { return info.ID == id })
	switch {
	case i < 0 && away:
		// Its tree stops here until it is listed again (LogOf and
		// CheckpointOf still read it).
		why := "is not listed on this node now (its group or this node's shard map may be catching up)"
		if p, ok := a.src.(Placement); ok && p.Away(id, w.inc) {
			why = "moved or is moving to another group; its audit log goes on where it is imported"
		}
		return nil, nil, fmt.Errorf("%w: %s %s (this node keeps its tree up to here: incarnation %d)", fsm.ErrUnknownWorld, id, why, w.inc)
	case i < 0:
		return nil, nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, id)
	}
	w = a.follow(infos[i], a.home(id))
	a.mu.Lock()
	l = w.log
	a.mu.Unlock()
	if l == nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		return nil, nil, w.err
	}
	return w, l, nil
}

// Status is a world's audit log on this node.
type Status struct {
	Size int64 // events logged
	Err  error // why following the feed last stopped; nil while it runs
}

// Status returns world's audit log's status.
func (a *Auditor) Status(id string) (Status, error) {
	w, l, err := a.world(id)
	if err != nil {
		return Status{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return Status{Size: l.Size(), Err: w.err}, nil
}

// Checkpoint returns world's newest signed checkpoint, signing one first
// when none was signed yet.
func (a *Auditor) Checkpoint(id string) ([]byte, error) {
	w, l, err := a.world(id)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	signed := w.signed
	w.mu.Unlock()
	if signed != nil {
		return signed, nil
	}
	return a.sign(w, l, false)
}

// Sign signs world's checkpoint now and returns it.
func (a *Auditor) Sign(id string) ([]byte, error) {
	w, l, err := a.world(id)
	if err != nil {
		return nil, err
	}
	return a.sign(w, l, true)
}

// SignSalts signs a salted world's salts note (audit.SaltsNote) with the
// node's audit key(s), as its checkpoints: ErrNoKey on a node without one.
func (a *Auditor) SignSalts(n audit.SaltsNote) ([]byte, error) {
	if len(a.cfg.Signers) == 0 {
		return nil, ErrNoKey
	}
	return audit.SignSalts(n, a.cfg.Signers...)
}

// sign signs w's checkpoint at its size now, unless force is false and
// the newest signed one has that size already.
func (a *Auditor) sign(w *world, l *audit.Log, force bool) ([]byte, error) {
	if len(a.cfg.Signers) == 0 {
		return nil, ErrNoKey
	}
	w.mu.Lock() // held while signing: signed sizes only grow
	defer w.mu.Unlock()
	cp, err := l.Checkpoint()
	if err != nil {
		return nil, err
	}
	if !force && w.signed != nil && w.signedSize == cp.Size {
		return w.signed, nil
	}
	msg, err := audit.SignCheckpoint(cp, a.cfg.Signers...)
	if err != nil {
		return nil, err
	}
	w.signed, w.signedSize = msg, cp.Size
	w.remember(cp.Size, msg)
	a.signed.Add(1)
	return msg, nil
}

// Stats are the auditor's figures across its worlds, for metrics.
type Stats struct {
	Worlds  int    // worlds whose log is open
	Stalled int    // of them, those whose follower stopped on an error (a gap)
	Events  int64  // events logged, all worlds together
	Signed  uint64 // checkpoints signed since New
	// Settled: the source's world list is the node's (Settler); until
	// then no world is followed or buried.
	Settled bool
}

// Stats returns the auditor's figures now.
func (a *Auditor) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Stats{Signed: a.signed.Load(), Settled: a.settled.Load()}
	for _, w := range a.worlds {
		if w.log == nil {
			continue
		}
		w.mu.Lock()
		if !w.away { // not followed here: counted where it lives now
			st.Worlds++
			st.Events += w.log.Size()
			if w.err != nil {
				st.Stalled++
			}
		}
		w.mu.Unlock()
	}
	return st
}

// signAll signs the checkpoint of every world that grew since its last.
func (a *Auditor) signAll() {
	if len(a.cfg.Signers) == 0 {
		return
	}
	type open struct {
		w *world
		l *audit.Log
	}
	a.mu.Lock()
	ws := make([]open, 0, len(a.worlds))
	for _, w := range a.worlds {
		if w.log != nil {
			ws = append(ws, open{w, w.log})
		}
	}
	a.mu.Unlock()
	for _, o := range ws {
		if _, err := a.sign(o.w, o.l, false); err != nil {
			a.log.Error("audit checkpoint not signed", "world", o.w.id, "err", err)
		}
	}
}
