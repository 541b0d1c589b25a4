package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// feed publishes committed events: a tail of recent events per world in
// memory, written behind to the archive by one writer goroutine. The tail
// never drops an event the archive does not hold yet, so a subscriber can
// always find every event either in the tail or in the archive.
type feed struct {
	arch     *archive
	tailSize int
	log      *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond // archived advanced, or closed
	tails   map[string]*tail
	pending []*fsm.Event
	// spare is an empty list, the round before last's, that pending
	// becomes when the writer takes it: publish goes on appending while
	// the writer writes, so a list handed back after the round would find
	// pending started anew (nil: none).
	spare []*fsm.Event
	// drops are deleted worlds whose archived events the writer deletes
	// before it writes pending; gens counts each world's deletes, so a
	// subscription opened before one ends instead of reading a re-created
	// world's events as if they followed.
	drops []string
	gens  map[string]uint64
	// fences are the worlds of this group fenced by a move (follow.go):
	// a subscription that follows moves goes on at the new home once it
	// has read up to the fence's seq.
	fences map[string]fsm.Fence
	// left are the stays of worlds on other groups that ended with a
	// move back here (follow.go).
	left map[string][]away
	// present is, after a restore, the restored worlds and their
	// incarnations, which the writer reconciles the archive with
	// (archive.reconcile) before its next write; nil: nothing to do.
	present   map[string]uint64
	lastIndex uint64 // Raft index of the last published entry
	archived  uint64 // every event from entries up to this index is archived
	writeErr  error
	closed    bool
	stopping  bool // waitArchived gives up: the store is shutting down
	wake      chan struct{}
	// hurry ends the writer's pause between rounds (archiveInterval):
	// a snapshot waits for the archive (waitArchived), or the feed closes.
	hurry chan struct{}
	done  chan struct{}
}

// tail is one world's recent events, events[i].Seq == first+i.
type tail struct {
	first  uint64
	events []*fsm.Event
	// buf is the whole array events lies at the end of (trimLocked drops
	// events from the front), so that push can reuse it (nil: none yet).
	buf      []*fsm.Event
	archived uint64        // highest seq known to be archived
	changed  chan struct{} // closed and replaced on every publish
}

func (t *tail) next() uint64 { return t.first + uint64(len(t.events)) }

// push appends ev. When the array is full and the events trimmed from its
// front left at least half of it free, the events move to its front
// instead of into a new array: a busy world's tail holds TailSize events
// plus an archive round's, and growing a fresh array each round was 3% of
// the bytes the replicated path allocated at 10,000 writers. An array
// over 8 times the events (left by a burst, or an archive that fell
// behind) is not kept: they go into a new one of their size.
func (t *tail) push(ev *fsm.Event) {
	n := len(t.events)
	if n < cap(t.events) {
		t.events = append(t.events, ev)
		return
	}
	if n > 0 && 2*n <= len(t.buf) && len(t.buf) <= 8*n && &t.buf[len(t.buf)-1] == &t.events[n-1] {
		copy(t.buf, t.events) // the halves do not overlap
		clear(t.buf[n:])
		t.events = append(t.buf[:n], ev)
		return
	}
	t.events = append(t.events, ev) // into a new array
	t.buf = t.events[:cap(t.events)]
}

// wake tells waiting subscribers that the tail changed.
func (t *tail) wake() {
	close(t.changed)
	t.changed = make(chan struct{})
}

func newFeed(arch *archive, tailSize int, log *slog.Logger) *feed {
	f := &feed{arch: arch, tailSize: tailSize, log: log, tails: make(map[string]*tail), gens: make(map[string]uint64),
		wake: make(chan struct{}, 1), hurry: make(chan struct{}, 1), done: make(chan struct{})}
	f.cond = sync.NewCond(&f.mu)
	go f.writer()
	return f
}

// tailLocked returns world's tail, creating an empty one that expects seq next.
func (f *feed) tailLocked(world string, next uint64) *tail {
	t := f.tails[world]
	if t == nil {
		t = &tail{first: next, archived: next - 1, changed: make(chan struct{})}
		f.tails[world] = t
	}
	return t
}

// reset forgets all tails after a snapshot restore: each world's tail then
// expects the seq after the restored one.
//
// applied is the restored snapshot's index: every event up to it is either
// archived already or never reaches this node (a gap), so the archive counts
// as complete up to there; otherwise the next snapshot would wait in
// waitArchived for a write that never comes.
//
// The restored state may lack worlds this node's archive holds, or hold
// them in a later incarnation (a delete this node missed): such events,
// pending or archived, go (archive.reconcile).
//
// gone names the worlds whose open subscriptions end (ErrUnknownWorld):
// the ones the state held before the restore and the restored one lacks
// or holds in another incarnation.
func (f *feed) reset(worlds []fsm.WorldInfo, applied uint64, gone ...string) {
	present := make(map[string]uint64, len(worlds)) // read before the lock: it reads the archive
	for _, w := range worlds {
		// An imported world's events on this group start after its
		// import, whatever its incarnation on the group it came from;
		// those from before it (FillMoved) carry the old group's.
		present[w.ID] = f.arch.restoreFloor(w)
	}
	f.mu.Lock()
	for _, w := range gone {
		f.gens[w]++
	}
	for _, t := range f.tails {
		close(t.changed)
	}
	f.tails = make(map[string]*tail, len(worlds))
	f.present = present
	f.fences, f.left = nil, nil
	for _, w := range worlds {
		f.tailLocked(w.ID, w.Seq+1)
		if w.Moved != nil {
			f.setFenceLocked(*w.Moved)
		}
	}
	f.pending = slices.DeleteFunc(f.pending, func(ev *fsm.Event) bool { return !restored(f.present, ev) })
	f.lastIndex = max(f.lastIndex, applied)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// publish appends the events of one applied entry.
func (f *feed) publish(index uint64, events []*fsm.Event) {
	f.mu.Lock()
	var last *tail
	for _, ev := range events {
		t := f.tailLocked(ev.World, ev.Seq)
		if ev.Seq != t.next() {
			// Only after a restore that raced a subscriber's lazy tail;
			// start the tail over at this event.
			f.log.Warn("event feed: tail restarted", "world", ev.World, "seq", ev.Seq, "expected", t.next())
			t.first, t.events, t.buf = ev.Seq, nil, nil
		}
		t.push(ev)
		if t != last {
			// Wake this world's subscribers once per entry, not per event.
			if last != nil {
				last.wake()
			}
			last = t
		}
	}
	if last != nil {
		last.wake()
	}
	f.pending = append(f.pending, events...)
	f.lastIndex = index
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// restored reports whether ev belongs to a world of a restored state
// (present: worlds and incarnations) rather than to a deleted world or an
// older incarnation.
func restored(present map[string]uint64, ev *fsm.Event) bool {
	inc, ok := present[ev.World]
	return ok && ev.Index >= inc
}

// drop forgets a deleted world: its tail (waiting subscribers wake and
// end), its events not archived yet, and, through the writer, those in the
// archive.
func (f *feed) drop(world string) {
	f.mu.Lock()
	if t := f.tails[world]; t != nil {
		delete(f.tails, world)
		close(t.changed)
	}
	delete(f.fences, world)
	delete(f.left, world)
	f.gens[world]++
	f.pending = slices.DeleteFunc(f.pending, func(ev *fsm.Event) bool { return ev.World == world })
	f.drops = append(f.drops, world)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// adopt starts an imported world's tail at next, the seq after the
// import (fsm.CmdImportWorld): its events on this group begin there, and
// its subscribers wait there rather than at 1. A move back
// (fsm.CmdImportWorldBack) finds the tail of the world's earlier stay
// here, which ended at its fence: it starts over at next too (the events
// between are the other home's, copied into the archive), and its
// subscribers wake to read on from there; one behind the fence follows
// it to the other home for those until the archive holds them (follow.go).
func (f *feed) adopt(world string, next uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaveLocked(world, next)
	delete(f.fences, world) // a world that moved back here
	if t := f.tails[world]; t != nil && (len(t.events) == 0 || t.next() != next) {
		t.first, t.archived = next, next-1
		t.events, t.buf = nil, nil
		t.wake()
		return
	}
	f.tailLocked(world, next)
}

// maxPendingReuse bounds the pending list the writer hands back to
// publish for reuse (a replay's big rounds are not kept).
const maxPendingReuse = 1 << 16

// archiveInterval is the least time between the starts of two archive
// rounds, unless a snapshot waits for the archive or the feed closes. Each
// round is a bbolt transaction whose commit writes its dirty pages and
// the meta page (pwrite, no fsync): a round per applied entry was 14% of
// the CPU at 4 shards with 64 writers (7 actions per entry), about as
// much as the events it wrote. Nothing waits for a round: subscribers
// read the tail, which keeps every event the archive does not hold yet.
// A group applying an entry less often than this writes as before, one
// round per entry, at once.
const archiveInterval = 50 * time.Millisecond

// writer moves pending events to the archive, one transaction per round,
// rounds at least archiveInterval apart.
func (f *feed) writer() {
	defer close(f.done)
	backoff := 10 * time.Millisecond
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	var last time.Time // when the last round started
	for {
		f.mu.Lock()
		for len(f.pending) == 0 && len(f.drops) == 0 && f.present == nil && f.archived == f.lastIndex && !f.closed {
			f.mu.Unlock()
			<-f.wake
			f.mu.Lock()
		}
		closing := f.closed
		f.mu.Unlock()
		if d := archiveInterval - time.Since(last); d > 0 && !closing {
			// Gather this interval's entries into the round (Timer.Reset
			// and Stop leave no stale tick since Go 1.23).
			pause.Reset(d)
			select {
			case <-pause.C:
			case <-f.hurry:
				pause.Stop()
			}
		}
		last = time.Now()
		f.mu.Lock()
		batch, drops, present, index, closed := f.takePendingLocked(), f.drops, f.present, f.lastIndex, f.closed
		f.drops, f.present = nil, nil
		f.mu.Unlock()
		if len(batch) > 0 || len(drops) > 0 || present != nil {
			// Deletes first: batch holds only events published after
			// them (drop and reset took the stale ones out of pending).
			err := f.arch.deleteWorlds(drops)
			if err == nil {
				drops = nil
				if present != nil {
					err = f.arch.reconcile(present)
				}
			}
			if err == nil {
				present = nil
				err = f.arch.write(batch)
			}
			if err != nil {
				// Keep the events and retry (a full disk may be freed);
				// meanwhile snapshots fail, so Raft keeps its log.
				f.log.Error("event archive write failed; retrying", "err", err, "events", len(batch), "in", backoff)
				f.mu.Lock()
				f.writeErr = err
				// A delete or restore since batch was taken made some of
				// its events stale: they must not follow it into the
				// archive.
				batch = slices.DeleteFunc(batch, func(ev *fsm.Event) bool {
					return slices.Contains(f.drops, ev.World) || f.present != nil && !restored(f.present, ev)
				})
				f.pending = append(batch, f.pending...)
				f.drops = append(drops, f.drops...)
				if f.present == nil {
					f.present = present // a newer restore's wins
				}
				stop := f.closed
				f.cond.Broadcast()
				f.mu.Unlock()
				if stop {
					return // the log replays these events after a restart
				}
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-f.wake:
					t.Stop()
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
		}
		backoff = 10 * time.Millisecond
		f.mu.Lock()
		f.writeErr = nil
		f.archived = index
		for _, ev := range batch {
			if t := f.tails[ev.World]; t != nil && ev.Seq > t.archived {
				t.archived = ev.Seq
			}
		}
		f.recycleLocked(batch)
		for _, t := range f.tails {
			f.trimLocked(t)
		}
		f.cond.Broadcast()
		f.mu.Unlock()
		if closed && len(batch) == 0 {
			return
		}
	}
}

// takePendingLocked returns the events for the writer's round; publish
// appends to the spare list meanwhile.
func (f *feed) takePendingLocked() []*fsm.Event {
	batch := f.pending
	f.pending, f.spare = f.spare, nil
	return batch
}

// recycleLocked hands a written round's list back, emptied, so that
// publish appends to it again instead of growing a new list from nothing
// (at 10,000 writers each round's list grew anew while the round before
// was written): as pending when nothing was published meanwhile, else as
// the spare that the next round's take makes pending.
func (f *feed) recycleLocked(batch []*fsm.Event) {
	if cap(batch) > maxPendingReuse {
		return
	}
	clear(batch)
	if f.pending == nil {
		f.pending = batch[:0]
	} else {
		f.spare = batch[:0]
	}
}

func (f *feed) trimLocked(t *tail) {
	drop := 0
	for len(t.events)-drop > f.tailSize && t.events[drop].Seq <= t.archived {
		drop++
	}
	if drop > 0 {
		// Readers copy out under the lock, so the prefix can go in place:
		// append moves the live events when the array fills, instead of
		// a copy of the whole tail on every write round.
		clear(t.events[:drop])
		t.events = t.events[drop:]
		t.first += uint64(drop)
	}
}

// pruner applies the retention bounds every r.Interval until stop closes.
func (f *feed) pruner(r Retention, stop <-chan struct{}) {
	if r.MaxAge <= 0 && r.MaxEventsPerWorld == 0 {
		return
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			var minTime int64
			if r.MaxAge > 0 {
				minTime = now.Add(-r.MaxAge).UnixNano()
			}
			n, err := f.arch.prune(minTime, r.MaxEventsPerWorld, 10000)
			if err != nil {
				f.log.Error("event archive prune failed", "err", err)
			} else if n > 0 {
				f.log.Info("event archive pruned", "events", n)
				f.compactIfWorth()
			}
		}
	}
}

// waitArchived blocks until every event of entries up to index is in the
// archive (called before a snapshot lets Raft compact the log).
func (f *feed) waitArchived(index uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.archived < index && f.writeErr == nil && !f.closed && !f.stopping {
		f.hurryWriter()
		f.cond.Wait()
	}
	if f.writeErr != nil {
		return fmt.Errorf("event archive: %w", f.writeErr)
	}
	if f.archived < index {
		return ErrClosed
	}
	if err := f.arch.sync(); err != nil {
		return fmt.Errorf("event archive sync: %w", err)
	}
	return nil
}

// abortWaits makes waitArchived return at once: a snapshot persisting while
// the store shuts down must not hold up raft's shutdown.
func (f *feed) abortWaits() {
	f.mu.Lock()
	f.stopping = true
	f.cond.Broadcast()
	f.mu.Unlock()
}

// close flushes pending events and stops the writer.
func (f *feed) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.cond.Broadcast()
	for _, t := range f.tails {
		t.wake() // waiting subscribers see closed
	}
	f.hurryWriter()
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	<-f.done
}

// hurryWriter ends the writer's pause between rounds, if it is in one.
func (f *feed) hurryWriter() {
	select {
	case f.hurry <- struct{}{}:
	default: // one is pending already
	}
}

// event returns one event from the tail or the archive, or nil.
func (f *feed) event(world string, seq uint64) *fsm.Event {
	f.mu.Lock()
	if t := f.tails[world]; t != nil && seq >= t.first && seq < t.next() {
		ev := t.events[seq-t.first]
		f.mu.Unlock()
		return ev
	}
	f.mu.Unlock()
	ev, err := f.arch.get(world, seq)
	if err != nil {
		f.log.Warn("event archive read failed", "world", world, "seq", seq, "err", err)
	}
	return ev
}

// Subscription reads a world's committed events in seq order, without gaps
// or duplicates, starting at the seq it was opened with.
type Subscription struct {
	f     *feed
	world string
	next  uint64
	gen   uint64 // the world's deletes when it was opened (feed.gens)
	// The moves it follows (follow.go): what opens the world's feed at
	// its new home, and that subscription once opened.
	open  MoveOpener
	stay  bool // open found no new home on this node: wait as before
	moved *Subscription
}

// Position returns the seq of the event the next Next call returns first.
func (s *Subscription) Position() uint64 {
	if s.moved != nil {
		return s.moved.Position()
	}
	return s.next
}

// maxRead bounds the events one Next call returns.
const maxRead = 256

// Next returns the next events (at least one), waiting for new ones. It
// returns ErrArchiveGap when the next event is not held on this node.
func (s *Subscription) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		if s.moved != nil {
			return s.moved.Next(ctx)
		}
		s.f.mu.Lock()
		if s.f.closed {
			s.f.mu.Unlock()
			return nil, ErrClosed
		}
		if s.f.gens[s.world] != s.gen {
			s.f.mu.Unlock()
			return nil, fmt.Errorf("%w: %s was deleted", fsm.ErrUnknownWorld, s.world)
		}
		t := s.f.tailLocked(s.world, 1)
		switch {
		case s.next >= t.next():
			if f, ok := s.f.fences[s.world]; ok && s.open != nil && !s.stay && s.next > f.Seq {
				s.f.mu.Unlock()
				if err := s.follow(ctx, f); err != nil {
					return nil, err
				}
				continue
			}
			ch := t.changed
			s.f.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case s.next >= t.first:
			i := s.next - t.first
			n := min(uint64(len(t.events))-i, maxRead)
			out := append([]*fsm.Event(nil), t.events[i:i+n]...)
			s.f.mu.Unlock()
			s.next += n
			return out, nil
		}
		s.f.mu.Unlock()
		evs, err := s.f.arch.read(s.world, s.next, maxRead)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			if fc, ok := s.f.awayAt(s.world, s.next); ok && s.open != nil && !s.stay {
				// The world was away then, its events there not copied
				// here yet: read them at that home.
				if err := s.follow(ctx, fc); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("%w: world %s seq %d", ErrArchiveGap, s.world, s.next)
		}
		s.next += uint64(len(evs))
		return evs, nil
	}
}
