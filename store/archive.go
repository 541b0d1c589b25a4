package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// archive is the node-local event archive: every committed event, by world
// and seq, in bbolt. It is derived from the log, so it is identical on all
// replicas that applied the same entries.
//
// Layout: one bucket per world; each key is the seq of the first event of a
// run of consecutive events written together (big endian), its value the
// run: uvarint count, varint newest leader time, then count length-prefixed
// fsm.EncodeEvent records. Runs never overlap; a round's events make runs
// of up to maxRunBytes of records. One bbolt put per run rather than per
// event keeps the archive off the apply path's critical cost.
type archive struct {
	// mu guards db: held shared by every use, exclusively while compact
	// swaps the file (archive_compact.go).
	mu    sync.RWMutex
	db    *bolt.DB
	clean string // marker file: written by close, removed by open
	// failWrite, when set (tests only), makes write fail with its error.
	failWrite atomic.Pointer[func() error]
	// arena holds a write's keys and values, reused from one write to the
	// next: bbolt reads them until its transaction commits, and its single
	// writer lock serializes writes. Each round's runs (tens of KB) were
	// fresh, zeroed allocations before.
	arena   []byte
	body    []byte // one run's records
	scratch []byte // one event's encoding
}

var eventsBucket = []byte("events")

// prunedBucket holds, per world, the newest seq retention deleted on
// purpose (big endian): below it, a missing event is not damage to
// refill (refill.go).
var prunedBucket = []byte("pruned")

// movedBucket holds, per world imported on this group, the incarnation
// whose events from before the import this archive holds (FillMoved, a
// refill): a restore's reconcile keeps those, whose log indexes are the
// old group's (archive_moved.go).
var movedBucket = []byte("moved")

// maxArena bounds the write arena kept between writes.
const maxArena = 4 << 20

// maxRunBytes bounds the records of one run. bbolt keeps values inline in
// leaf pages and splits a leaf only past four keys, so an append rewrites
// the last leaf with up to four earlier runs: with one run per round (tens
// of KB at load) every round rewrote about three earlier rounds (the
// archive was a fifth of the bytes the store allocated, and 4-5 times the
// bytes it stored). Runs of about a KB keep a page-sized leaf the most an
// append rewrites, at a few dozen events per bbolt put.
const maxRunBytes = 1024

// openArchive opens the archive at path. After a shutdown that did not
// close it (no clean marker: a crash, a kill, a power loss), it first checks
// the file, since writes skip fsync and a power loss can leave it corrupt;
// a corrupt archive is moved aside and replaced by an empty one, as is one
// that does not open or is shorter than its pages (truncated), clean
// marker or not. The archive is derived data: Raft replays what its log
// still holds, the refiller (refill.go) fetches the rest from other
// nodes, and until then readers of older events get archive_gap, as after
// a snapshot install.
func openArchive(path string, log *slog.Logger) (*archive, error) {
	clean := path + ".clean"
	// A compaction that a crash interrupted left its copy: the file it
	// copied is still the archive.
	if err := os.Remove(path + compactSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("event archive: %w", err)
	}
	_, statErr := os.Stat(path)
	existed := statErr == nil
	_, cleanErr := os.Stat(clean)
	if err := os.Remove(clean); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("event archive: %w", err)
	}
	db, err := openBolt(path)
	if err == nil && existed && cleanErr != nil {
		if err = checkBolt(db); err != nil {
			db.Close()
		}
	}
	if err != nil && existed && !errors.Is(err, berrors.ErrTimeout) && !errors.Is(err, fs.ErrPermission) {
		aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().UnixNano())
		log.Error("event archive is corrupt (an unclean shutdown, a truncated file); moved aside, starting an empty one (older events: archive_gap until refilled from peers)",
			"path", path, "moved_to", aside, "err", err)
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("event archive %s is corrupt (%v) and cannot be moved aside: %w", path, err, rerr)
		}
		db, err = openBolt(path)
	}
	if err != nil {
		return nil, fmt.Errorf("open event archive %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(prunedBucket); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(movedBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(eventsBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init event archive: %w", err)
	}
	// The archive is derived from the log: it skips fsync on every write
	// and is synced before a snapshot lets Raft drop the entries it holds
	// (feed.waitArchived), so the hot path keeps Raft's fsync only.
	db.NoSync = true
	return &archive{db: db, clean: clean}, nil
}

// openBolt opens a bbolt file; a file so corrupt that bbolt panics or
// faults reading it, or shorter than the pages its meta page counts (a
// truncated file, which would fault at the first read past its end), is
// an error. A fault during the open leaks the half-opened file's handle
// and mapping: once, for a file moved aside.
func openBolt(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: bbolt: %v", fsm.ErrMalformed, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	if err := checkSize(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkSize returns an error when db's file is shorter than its pages.
func checkSize(db *bolt.DB) error {
	st, err := os.Stat(db.Path())
	if err != nil {
		return err
	}
	var need int64
	if err := db.View(func(tx *bolt.Tx) error { need = tx.Size(); return nil }); err != nil {
		return err
	}
	if st.Size() < need {
		return fmt.Errorf("%w: truncated: %d bytes, its pages need %d", fsm.ErrMalformed, st.Size(), need)
	}
	return nil
}

// checkBolt runs bbolt's consistency check and returns its first error
// (a fault reading a page is one).
func checkBolt(db *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt check: %v", fsm.ErrMalformed, r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	})
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// eventRun is one stored run of consecutive events.
type eventRun struct {
	first, count uint64
	newest       int64 // leader time of the newest event
	body         []byte
}

func (r eventRun) last() uint64 { return r.first + r.count - 1 }

func decodeRun(k, v []byte) (eventRun, error) {
	r := eventRun{first: binary.BigEndian.Uint64(k)}
	n, w := binary.Uvarint(v)
	if w <= 0 || n == 0 {
		return r, fmt.Errorf("%w: archive run header", fsm.ErrMalformed)
	}
	t, w2 := binary.Varint(v[w:])
	if w2 <= 0 {
		return r, fmt.Errorf("%w: archive run header", fsm.ErrMalformed)
	}
	r.count, r.newest, r.body = n, t, v[w+w2:]
	return r, nil
}

// events decodes the run's events with seq >= from, at most max of them.
func (r eventRun) events(from uint64, max int, out []*fsm.Event) ([]*fsm.Event, error) {
	p := r.body
	for seq := r.first; seq <= r.last() && len(out) < max; seq++ {
		n, w := binary.Uvarint(p)
		if w <= 0 || n > uint64(len(p)-w) {
			return out, fmt.Errorf("%w: archive run %d truncated", fsm.ErrMalformed, r.first)
		}
		rec := p[w : w+int(n)]
		p = p[w+int(n):]
		if seq < from {
			continue
		}
		ev, err := fsm.DecodeEvent(rec)
		if err != nil {
			return out, fmt.Errorf("archive seq %d: %w", seq, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// lastRun returns the newest run of a world's bucket.
func lastRun(b *bolt.Bucket) (eventRun, bool, error) {
	k, v := b.Cursor().Last()
	if k == nil {
		return eventRun{}, false, nil
	}
	r, err := decodeRun(k, v)
	return r, err == nil, err
}

// write stores events (in seq order per world, as the feed publishes them)
// in one transaction, one run per world. Events the archive already holds
// (log replay after a restart) are skipped: they are the same committed
// events.
func (a *archive) write(events []*fsm.Event) error {
	if fail := a.failWrite.Load(); fail != nil {
		if err := (*fail)(); err != nil {
			return err
		}
	}
	return a.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(eventsBucket)
		if cap(a.arena) > maxArena {
			a.arena = nil // after a replay's big rounds: do not keep it
		}
		a.arena = a.arena[:0]
		for i := 0; i < len(events); {
			world := events[i].World
			j := i
			for j < len(events) && events[j].World == world {
				j++
			}
			if err := a.writeRuns(root, world, events[i:j]); err != nil {
				return err
			}
			i = j
		}
		return nil
	})
}

// writeRuns stores one world's events as runs (inside write's
// transaction).
func (a *archive) writeRuns(root *bolt.Bucket, world string, events []*fsm.Event) error {
	b, err := root.CreateBucketIfNotExists([]byte(world))
	if err != nil {
		return err
	}
	b.FillPercent = 0.95 // keys are appended in seq order
	held := uint64(0)
	if r, ok, err := lastRun(b); err != nil {
		return err
	} else if ok {
		held = r.last()
	}
	for len(events) > 0 {
		// Skip what is held; split where seqs jump (after a snapshot install).
		if events[0].Seq <= held {
			events = events[1:]
			continue
		}
		// A run: consecutive seqs, records of up to maxRunBytes (at least
		// one record).
		a.body = a.body[:0]
		n := 0
		for n < len(events) && (n == 0 || events[n].Seq == events[n-1].Seq+1) {
			a.scratch = fsm.AppendEvent(a.scratch[:0], events[n])
			if n > 0 && len(a.body)+binary.MaxVarintLen64+len(a.scratch) > maxRunBytes {
				break
			}
			a.body = binary.AppendUvarint(a.body, uint64(len(a.scratch)))
			a.body = append(a.body, a.scratch...)
			n++
		}
		// Key and value go to the end of the arena. When append moves the
		// arena, earlier keys and values stay valid in the old array,
		// which nothing writes again.
		start := len(a.arena)
		a.arena = binary.BigEndian.AppendUint64(a.arena, events[0].Seq)
		mid := len(a.arena)
		a.arena = binary.AppendUvarint(a.arena, uint64(n))
		a.arena = binary.AppendVarint(a.arena, events[n-1].Time)
		a.arena = append(a.arena, a.body...)
		key, val := a.arena[start:mid:mid], a.arena[mid:len(a.arena):len(a.arena)]
		if err := b.Put(key, val); err != nil {
			return err
		}
		held = events[n-1].Seq
		events = events[n:]
	}
	return nil
}

// deleteWorlds deletes the named worlds' events (deleted worlds), in one
// transaction.
func (a *archive) deleteWorlds(worlds []string) error {
	if len(worlds) == 0 {
		return nil
	}
	return a.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(eventsBucket)
		for _, w := range worlds {
			if err := root.DeleteBucket([]byte(w)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return fmt.Errorf("archive: delete world %s: %w", w, err)
			}
			// A re-created world starts from seq 1: nothing of it was pruned.
			if err := tx.Bucket(prunedBucket).Delete([]byte(w)); err != nil {
				return fmt.Errorf("archive: delete world %s: %w", w, err)
			}
			if err := tx.Bucket(movedBucket).Delete([]byte(w)); err != nil {
				return fmt.Errorf("archive: delete world %s: %w", w, err)
			}
		}
		return nil
	})
}

// reconcile makes the archive match a restored state, whose worlds are
// present with their incarnations: a node that installed a snapshot may
// have missed a world's delete (and its re-creation), so the archive holds
// events the state no longer has. It deletes the buckets of worlds not
// present, and of worlds whose oldest archived event precedes their
// incarnation (the log index of their creation: every event of the
// current incarnation comes at or after it). Incarnation 0 (a world from
// before incarnations) keeps its bucket.
func (a *archive) reconcile(present map[string]uint64) error {
	return a.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(eventsBucket)
		var stale [][]byte
		err := root.ForEachBucket(func(k []byte) error {
			inc, ok := present[string(k)]
			if !ok {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			if inc == 0 {
				return nil
			}
			k1, v1 := root.Bucket(k).Cursor().First()
			if k1 == nil {
				return nil
			}
			r, err := decodeRun(k1, v1)
			if err != nil {
				return fmt.Errorf("archive %s: %w", k, err)
			}
			first, err := r.events(r.first, 1, nil)
			if err != nil {
				return fmt.Errorf("archive %s: %w", k, err)
			}
			if len(first) > 0 && first[0].Index < inc {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := root.DeleteBucket(k); err != nil {
				return fmt.Errorf("archive: delete world %s: %w", k, err)
			}
			if err := tx.Bucket(prunedBucket).Delete(k); err != nil {
				return fmt.Errorf("archive: delete world %s: %w", k, err)
			}
			if err := tx.Bucket(movedBucket).Delete(k); err != nil {
				return fmt.Errorf("archive: delete world %s: %w", k, err)
			}
		}
		return nil
	})
}

// read returns up to max contiguous events of world from seq on. An empty
// result means seq is not held here.
func (a *archive) read(world string, from uint64, max int) ([]*fsm.Event, error) {
	var out []*fsm.Event
	err := a.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(eventsBucket).Bucket([]byte(world))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.Seek(seqKey(from))
		if k == nil || binary.BigEndian.Uint64(k) > from {
			k, v = c.Prev() // the run that may contain from starts before it
			if k == nil {
				k, v = c.First()
			}
		}
		next := from
		for ; k != nil && len(out) < max; k, v = c.Next() {
			r, err := decodeRun(k, v)
			if err != nil {
				return fmt.Errorf("archive %s: %w", world, err)
			}
			if r.last() < next {
				continue
			}
			if r.first > next {
				break // a hole: what follows is not contiguous
			}
			if out, err = r.events(next, max, out); err != nil {
				return fmt.Errorf("archive %s: %w", world, err)
			}
			next = r.last() + 1
		}
		return nil
	})
	return out, err
}

// get returns one event, or nil when it is not held.
func (a *archive) get(world string, seq uint64) (*fsm.Event, error) {
	evs, err := a.read(world, seq, 1)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[0], nil
}

// prune deletes, in every world, the runs beyond the retention bounds: runs
// whose newest event is older than minTime (leader time; 0 = no age bound),
// and runs that lie wholly before the newest keep events (0 = no count
// bound). Whole runs go, so slightly more than the bounds may stay. It works
// in transactions of at most batch runs so that the writer is not held up,
// and returns how many events it removed.
func (a *archive) prune(minTime int64, keep uint64, batch int) (int, error) {
	var worlds [][]byte
	err := a.view(func(tx *bolt.Tx) error {
		return tx.Bucket(eventsBucket).ForEachBucket(func(k []byte) error {
			worlds = append(worlds, append([]byte(nil), k...))
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, w := range worlds {
		for {
			runs, events, err := a.pruneWorld(w, minTime, keep, batch)
			total += events
			if err != nil {
				return total, err
			}
			if runs < batch {
				break
			}
		}
	}
	return total, nil
}

func (a *archive) pruneWorld(world []byte, minTime int64, keep uint64, batch int) (runs, events int, err error) {
	err = a.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(eventsBucket).Bucket(world)
		if b == nil {
			return nil
		}
		newest, ok, err := lastRun(b)
		if err != nil || !ok {
			return err
		}
		// Collect first, then delete: deleting under a moving cursor skips keys.
		var doomed [][]byte
		var floor uint64
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(doomed) < batch; k, v = c.Next() {
			r, err := decodeRun(k, v)
			if err != nil {
				return fmt.Errorf("archive %s: %w", world, err)
			}
			tooMany := keep > 0 && newest.last()-r.last() >= keep
			tooOld := minTime > 0 && r.newest < minTime
			if !tooMany && !tooOld {
				break // seqs and leader times only grow: the rest stay
			}
			doomed = append(doomed, append([]byte(nil), k...))
			events += int(r.count)
			floor = r.last()
		}
		if floor > 0 {
			if err := setPruned(tx, world, floor); err != nil {
				return err
			}
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		runs = len(doomed)
		return nil
	})
	return runs, events, err
}

// sync makes every write so far durable.
func (a *archive) sync() error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.db.Sync()
}

// close syncs and closes the archive, then leaves the clean marker that
// lets the next open skip the consistency check.
func (a *archive) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.db.Sync(); err != nil {
		a.db.Close()
		return err
	}
	if err := a.db.Close(); err != nil {
		return err
	}
	return os.WriteFile(a.clean, nil, 0o600)
}
