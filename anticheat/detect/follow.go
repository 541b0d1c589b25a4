package detect

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
)

// Follow observes the events sub returns until ctx ends or the feed
// fails, and after every read that brings the events since the last
// evaluation to Config.Every or more, evaluates and hands the new flags to
// sink. It returns the error that ended it (ctx's when cancelled).
func (d *Detector) Follow(ctx context.Context, sub fanout.Subscription, sink Sink) error {
	_, err := d.follow(ctx, sub, 0, 0, sink, new(atomic.Uint64), nil)
	return err
}

// errNotHere ends a Runner's follow of a world this node no longer
// evaluates (its group's leadership moved between two scans).
var errNotHere = errors.New("gsd/anticheat/detect: the world is evaluated elsewhere now")

// follow is Follow from seq next on (events before it are skipped: a
// subscription opened again may start before where the last one ended),
// as the follower of the world's incarnation inc; it returns the seq
// after the last event observed, which it also keeps in pos as it goes.
// With here set, each read is observed only while here says this node
// still evaluates the world: else follow returns errNotHere before
// observing it, so an old leader never counts (nor flags) the events its
// successor committed, which the successor counts.
func (d *Detector) follow(ctx context.Context, sub fanout.Subscription, next, inc uint64, sink Sink, pos *atomic.Uint64, here func() bool) (uint64, error) {
	n := 0
	for {
		evs, err := sub.Next(ctx)
		if err != nil {
			return next, err
		}
		if here != nil && !here() {
			return next, errNotHere
		}
		var read int
		if next, read, err = d.observeRead(ctx, evs, next, inc); err != nil {
			return next, err
		}
		n += read
		pos.Store(next)
		if n < d.cfg.Every {
			continue
		}
		n = 0
		for _, f := range d.Evaluate() {
			sink.Flag(f)
		}
	}
}

// observeRead observes the events of one read from seq next on as the
// follower of their world's incarnation inc, marking where it is in
// d.marks (what a checkpoint keeps), under one hold of d.mu, unless ctx
// ended: a follower stopped (its world deleted, created again or
// evaluated elsewhere) marks nothing after its Runner cancelled it, so
// the marks of the follower that replaces it are never overwritten by
// its. It returns the seq after the last event read and how many were.
func (d *Detector) observeRead(ctx context.Context, evs []*fsm.Event, next, inc uint64) (uint64, int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return next, 0, err
	}
	n := 0
	for _, ev := range evs {
		if ev.Seq < next {
			continue
		}
		if ev.Status == fsm.StatusApplied {
			d.observe(ev)
		}
		next = ev.Seq + 1
		d.marks[ev.World] = mark{inc: inc, next: next}
		n++
	}
	if d.observed != nil {
		d.observed.Add(float64(n))
	}
	return next, n, nil
}

// ErrFeedGone is what a Source's Subscribe wraps when the feed no longer
// holds the events asked for (an archive trimmed by retention, a node that
// joined late): the Runner then skips to the oldest events it holds.
var ErrFeedGone = errors.New("gsd/anticheat/detect: the feed no longer holds these events")

// Source is what a Runner follows: the worlds a node holds and their
// committed feeds (store.Store has both; so has the auditor's Source).
type Source interface {
	Worlds() []fsm.WorldInfo
	Subscribe(world string, from uint64) (fanout.Subscription, error)
}

// Evaluator is a Source that evaluates only some of its worlds on this
// node: those whose group this node leads (a node of a shard map runs
// several groups, and leads some). A world it does not evaluate is not
// followed here; its follower keeps its place and its counts, and starts
// again from there when the node evaluates the world again (leadership
// came back), so no event counts twice.
type Evaluator interface {
	Evaluates(world string) bool
}

// Settler is a Source that may list an older state of its worlds for a
// while after a restart (a node's groups list their last raft snapshot's
// worlds and seqs until they replayed their log): Settled reports when it
// no longer does. A Runner with Checkpoints restored from one waits for
// it before its first scan, so it never takes a world created since the
// snapshot for one deleted, nor an older seq for a world created again.
type Settler interface {
	Settled() bool
}

// Runner runs one Detector over every world of a Source: per world a
// follower from seq 1, started again (from where it stopped) at the next
// scan when its feed fails or when the Source (an Evaluator) evaluates the
// world here again, stopped when the world is gone or evaluated elsewhere.
// One Detector for all worlds: a player's counts add up across the worlds
// it follows.
//
// Without Checkpoints a Runner keeps no state across a restart: a new one
// follows every world from seq 1 again, so its counts are rebuilt from
// the node's event archive, as far back as the archive's retention keeps
// events, and what a deleted world's events showed is lost. With them it
// saves a checkpoint every Config.Checkpoint and when it stops, and a new
// one starts from the last: the Detector's counts and flags as they were,
// each world followed from the seq after the last event the checkpoint
// counted (a world created again since, from its seq 1), once a Source
// that is a Settler settled, so every event counts once and a deleted
// world's evidence stays (docs/ANTICHEAT.md, "Restarts and leadership").
type Runner struct {
	d    *Detector
	src  Source
	sink Sink
	log  *slog.Logger
	// Metrics, when set before Run, counts the events skipped.
	Metrics *Metrics
	// Checkpoints, when set before Run, keeps the Detector's checkpoint.
	Checkpoints Checkpoints

	waited bool // the wait for a Settler was logged

	mu     sync.Mutex
	worlds map[string]*follower
	wg     sync.WaitGroup
}

// follower is one world's follower; its fields are guarded by Runner.mu.
type follower struct {
	next    uint64         // the seq to start from
	latest  uint64         // the world's seq at the last scan
	gen     int            // incarnations of the world seen: a follower of an older one is stale
	pos     *atomic.Uint64 // the running follower's next seq
	seen    uint64         // where the follower was when the scan began
	inc     uint64         // the world's incarnation (fsm.WorldInfo)
	running bool
	cancel  context.CancelFunc
	err     error // why the last follower stopped
}

// NewRunner returns a Runner of d over src's worlds, its flags to sink and
// its feed failures to log. Run starts it.
func NewRunner(d *Detector, src Source, sink Sink, log *slog.Logger) (*Runner, error) {
	if d == nil || src == nil || sink == nil || log == nil {
		return nil, errors.New("gsd/anticheat/detect: runner needs a detector, a source, a sink and a logger")
	}
	return &Runner{d: d, src: src, sink: sink, log: log, worlds: map[string]*follower{}}, nil
}

// Run follows every world of the source until ctx ends, then waits for
// its followers and returns. Besides every Config.Every events of a world,
// it evaluates at every scan (Config.Scan), so a quiet world's flags come
// out too. With Checkpoints, it starts from the last checkpoint (handing
// the flags it holds to the sink again, marked Restored: a sink that
// queues may have lost them at the stop), scans only once a Settler
// source settled, and saves one every Config.Checkpoint and before it
// returns. A Runner runs once.
func (r *Runner) Run(ctx context.Context) {
	if r.Metrics != nil {
		r.d.mu.Lock()
		r.d.observed = r.Metrics.observed
		r.d.mu.Unlock()
	}
	var save <-chan time.Time
	if r.Checkpoints != nil {
		r.restore()
		c := time.NewTicker(r.d.cfg.Checkpoint)
		defer c.Stop()
		save = c.C
	}
	t := time.NewTicker(r.d.cfg.Scan)
	defer t.Stop()
	settled := r.Checkpoints == nil
	for {
		if !settled {
			settled = r.settled()
		}
		if settled {
			r.scan(ctx)
		}
		select {
		case <-ctx.Done():
			r.wg.Wait()
			if r.Checkpoints != nil {
				r.save()
			}
			return
		case <-t.C:
			for _, f := range r.d.Evaluate() {
				r.sink.Flag(f)
			}
		case <-save:
			r.save()
		}
	}
}

// settled reports whether r's Source (a Settler) lists its worlds as
// they are, logging the first wait.
func (r *Runner) settled() bool {
	s, ok := r.src.(Settler)
	if !ok || s.Settled() {
		return true
	}
	if !r.waited {
		r.waited = true
		r.log.Info("anticheat detectors wait for this node's groups to replay their logs before following their worlds")
	}
	return false
}

// restore starts r from its last checkpoint: the Detector's state, and a
// follower per world it marks, at the seq after the last event it
// counted. A checkpoint that cannot be read is logged and left: the
// followers then start from seq 1, rebuilding the counts from the
// archive.
func (r *Runner) restore() {
	b, err := r.Checkpoints.Load()
	if err == nil && b == nil {
		r.log.Info("anticheat detectors have no checkpoint: their counts are rebuilt from the archive")
		return
	}
	var marks map[string]mark
	var flags []Flag
	if err == nil {
		marks, flags, err = r.d.restore(b)
	}
	if err != nil {
		r.log.Error("anticheat detectors' checkpoint unusable: their counts are rebuilt from the archive instead", "err", err)
		r.checkpointError("load")
		return
	}
	r.mu.Lock()
	for w, m := range marks {
		r.worlds[w] = &follower{next: m.next, inc: m.inc}
	}
	r.mu.Unlock()
	for _, f := range flags {
		f.Restored = true
		r.sink.Flag(f)
	}
	r.log.Info("anticheat detectors restored from their checkpoint", "worlds", len(marks), "flags", len(flags))
}

// save checkpoints the Detector (with the marks of the worlds r knows),
// handing the flags of its evaluation to the sink; a failure is logged
// (the next save tries again; a restart meanwhile starts from the
// checkpoint before, replaying the events since).
func (r *Runner) save() {
	r.mu.Lock()
	known := map[string]bool{}
	for w := range r.worlds {
		known[w] = true
	}
	r.mu.Unlock()
	flags, b := r.d.checkpoint(func(w string) bool { return known[w] })
	for _, f := range flags {
		r.sink.Flag(f)
	}
	if err := r.Checkpoints.Save(b); err != nil {
		r.log.Warn("anticheat detectors' checkpoint not saved", "err", err)
		r.checkpointError("save")
	}
}

func (r *Runner) checkpointError(op string) {
	if r.Metrics != nil {
		r.Metrics.checkpoints.WithLabelValues(op).Inc()
	}
}

// scan starts a follower for every world without a running one and stops
// those of worlds gone.
func (r *Runner) scan(ctx context.Context) {
	// Where each follower is, taken before the worlds' seqs are read: a
	// seq read after is at least as far, unless the world was created
	// again.
	r.mu.Lock()
	for _, f := range r.worlds {
		f.seen = f.next
		if f.running {
			f.seen = max(f.seen, f.pos.Load())
		}
	}
	r.mu.Unlock()
	live := map[string]fsm.WorldInfo{}
	for _, w := range r.src.Worlds() {
		live[w.ID] = w
	}
	ev, _ := r.src.(Evaluator)
	here := map[string]bool{}
	for id := range live {
		here[id] = ev == nil || ev.Evaluates(id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil { // Run's select found its ticker and ctx ready
		return
	}
	for id, f := range r.worlds {
		if _, ok := live[id]; !ok {
			if f.running {
				f.cancel()
			}
			delete(r.worlds, id)
		}
	}
	for id, w := range live {
		f := r.worlds[id]
		if f == nil {
			// New here, or back (its group's snapshot listed it late, it
			// left this node's groups and came back): from where the
			// Detector last marked this incarnation, if it did.
			f = &follower{next: 1, inc: w.Incarnation}
			if m, ok := r.d.mark(id); ok && w.Incarnation != 0 && m.inc == w.Incarnation {
				f.next = m.next
			}
			r.worlds[id] = f
		}
		if w.Incarnation != f.inc || (w.Incarnation == 0 && w.Seq+1 < f.seen) {
			// Another incarnation, or, for a world made before
			// incarnations, a seq that went back: the world was deleted
			// and created again. Follow the new one from its start. (What
			// the old follower read of the new world before this scan, if
			// it grew past the old one's seq, counts twice.) A lower seq
			// of the same incarnation is a Source that lags (a group
			// replaying its log): the follower waits for it where it is.
			if f.running {
				f.cancel()
			}
			f.next, f.gen, f.inc = 1, f.gen+1, w.Incarnation
		}
		f.latest = w.Seq
		if !here[id] {
			if f.running {
				f.cancel() // its follow keeps where it was in f.next
			}
			continue
		}
		if f.running {
			continue
		}
		fctx, cancel := context.WithCancel(ctx)
		f.running, f.cancel, f.pos = true, cancel, new(atomic.Uint64)
		r.wg.Add(1)
		go r.follow(fctx, id, f)
	}
}

// follow follows world id from f.next until ctx ends or its feed fails.
// When the feed no longer holds f.next (ErrFeedGone: the archive's
// retention deleted it), it skips to the oldest event the feed still
// holds: the detectors then miss what came before, which is better than
// following nothing.
func (r *Runner) follow(ctx context.Context, id string, f *follower) {
	defer r.wg.Done()
	r.mu.Lock()
	next, latest, gen, pos, inc := f.next, f.latest, f.gen, f.pos, f.inc
	r.mu.Unlock()
	sub, err := r.src.Subscribe(id, next)
	if errors.Is(err, ErrFeedGone) && latest >= next {
		held := r.oldest(id, next, latest)
		r.log.Warn("anticheat detectors skip events the feed no longer holds", "world", id, "from", next, "to", held-1, "err", err)
		if r.Metrics != nil {
			r.Metrics.skipped.Add(float64(held - next))
		}
		next = held
		sub, err = r.src.Subscribe(id, next)
	}
	if err == nil {
		var here func() bool
		if ev, ok := r.src.(Evaluator); ok {
			here = func() bool { return ev.Evaluates(id) }
		}
		next, err = r.d.follow(ctx, sub, next, inc, r.sink, pos, here)
	}
	if ctx.Err() != nil || errors.Is(err, errNotHere) {
		err = nil // stopped, not failed (the next scan starts it again here if this node evaluates the world again)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f.cancel()
	f.running = false
	if f.gen != gen {
		return // the world was created again: the next scan starts at 1
	}
	again := err != nil && f.err != nil && f.err.Error() == err.Error()
	f.next, f.err = next, err
	if err != nil && !again { // a lasting failure is logged once
		r.log.Warn("anticheat detectors stopped following a world's feed; retrying", "world", id, "seq", next, "err", err)
	}
}

// oldest returns the oldest seq after gone (which the feed no longer
// holds) up to latest that world's feed still holds, or latest+1 (the
// next event) when it holds none of them. Retention deletes a world's
// oldest events first, so the seqs held are those from some seq on: a
// binary search of Subscribe's answers finds it (a subscription is only
// a position until read, so the probes are dropped).
func (r *Runner) oldest(world string, gone, latest uint64) uint64 {
	lo, hi := gone+1, latest+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if _, err := r.src.Subscribe(world, mid); errors.Is(err, ErrFeedGone) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
