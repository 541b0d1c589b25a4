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
	"golang.org/x/mod/sumdb/note"
)

// The package's errors.
var (
	// ErrNoKey: a signed checkpoint asked of a node that holds no audit key.
	ErrNoKey = errors.New("gsd/audit/auditor: no audit key configured on this node")
	// ErrStopped: the auditor is not running.
	ErrStopped = errors.New("gsd/audit/auditor: stopped")
)

// Source is what the auditor reads on one node: the worlds it holds and
// their committed feeds.
type Source interface {
	// Worlds lists the worlds this node knows.
	Worlds() []fsm.WorldInfo
	// Subscribe opens world's committed feed from seq from (inclusive).
	Subscribe(world string, from uint64) (fanout.Subscription, error)
}

// StoreFunc returns the hash store of world's tree (a boltstore.Store in
// the node's data dir; an audit.MemStore in tests).
type StoreFunc func(world string) (audit.HashStore, error)

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
	stores StoreFunc
	log    *slog.Logger

	mu     sync.Mutex
	worlds map[string]*world
	ctx    context.Context // Run's; nil before Run and after it returned
	wg     sync.WaitGroup
	signed atomic.Uint64 // checkpoints signed
}

// world is one world's log and its newest signed checkpoint.
type world struct {
	id  string
	log *audit.Log // nil until its store opened

	mu         sync.Mutex
	signed     []byte // the newest signed checkpoint, a note
	signedSize int64
	running    bool  // a follower goroutine is at work
	err        error // why the last follower stopped
}

// New returns an Auditor of src's worlds, their trees kept in the stores
// stores opens. Run starts it.
func New(cfg Config, src Source, stores StoreFunc) (*Auditor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || stores == nil {
		return nil, errors.New("auditor: nil source or stores")
	}
	return &Auditor{cfg: cfg, src: src, stores: stores, log: cfg.Logger, worlds: make(map[string]*world)}, nil
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
	for {
		a.scan()
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

// scan starts a follower for every world of the source without a running
// one.
func (a *Auditor) scan() {
	for _, w := range a.src.Worlds() {
		a.follow(w.ID)
	}
}

// follow opens world's log if needed and starts its follower unless one
// runs or the auditor is not running.
func (a *Auditor) follow(id string) *world {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.worlds[id]
	if w == nil {
		w = &world{id: id}
		a.worlds[id] = w
	}
	if w.log == nil {
		l, err := a.open(id)
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
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		a.wg.Add(1)
		go a.run(a.ctx, w)
	}
	return w
}

func (a *Auditor) open(id string) (*audit.Log, error) {
	s, err := a.stores(id)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", id, err)
	}
	return audit.Open(id, s)
}

// run appends world's committed events to its log until ctx ends or the
// feed or the log fails (the next scan starts it again).
func (a *Auditor) run(ctx context.Context, w *world) {
	defer a.wg.Done()
	err := a.append(ctx, w)
	if ctx.Err() != nil {
		err = nil // stopped, not failed
	}
	w.mu.Lock()
	w.running = false
	again := err != nil && w.err != nil && w.err.Error() == err.Error()
	w.err = err
	w.mu.Unlock()
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
		if err := w.log.Append(batch...); err != nil {
			return err
		}
		w.mu.Lock()
		w.err = nil
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
	if l != nil {
		return w, l, nil
	}
	if !slices.ContainsFunc(a.src.Worlds(), func(info fsm.WorldInfo) bool { return info.ID == id }) {
		return nil, nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, id)
	}
	w = a.follow(id)
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
	a.signed.Add(1)
	return msg, nil
}

// Stats are the auditor's figures across its worlds, for metrics.
type Stats struct {
	Worlds  int    // worlds whose log is open
	Stalled int    // of them, those whose follower stopped on an error (a gap)
	Events  int64  // events logged, all worlds together
	Signed  uint64 // checkpoints signed since New
}

// Stats returns the auditor's figures now.
func (a *Auditor) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Stats{Signed: a.signed.Load()}
	for _, w := range a.worlds {
		if w.log == nil {
			continue
		}
		st.Worlds++
		st.Events += w.log.Size()
		w.mu.Lock()
		if w.err != nil {
			st.Stalled++
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
