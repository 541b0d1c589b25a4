package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	bolt "go.etcd.io/bbolt"
)

// archive is the node-local event archive: every committed event, keyed by
// world and seq, in bbolt. It is derived from the log, so it is identical on
// all replicas that applied the same entries.
type archive struct {
	db *bolt.DB
}

var eventsBucket = []byte("events")

func openArchive(path string) (*archive, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open event archive %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
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
	return &archive{db: db}, nil
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// write stores events in one transaction (one fsync). Rewriting an event
// that is already there (log replay after restart) writes the same bytes.
func (a *archive) write(events []*fsm.Event) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(eventsBucket)
		var (
			b    *bolt.Bucket
			last string
		)
		for _, ev := range events {
			if b == nil || ev.World != last {
				var err error
				if b, err = root.CreateBucketIfNotExists([]byte(ev.World)); err != nil {
					return err
				}
				b.FillPercent = 0.95 // keys are appended in seq order
				last = ev.World
			}
			if err := b.Put(seqKey(ev.Seq), fsm.EncodeEvent(ev)); err != nil {
				return err
			}
		}
		return nil
	})
}

// read returns up to max contiguous events of world from seq on. An empty
// result means seq is not held here.
func (a *archive) read(world string, from uint64, max int) ([]*fsm.Event, error) {
	var out []*fsm.Event
	err := a.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(eventsBucket).Bucket([]byte(world))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		next := from
		for k, v := c.Seek(seqKey(from)); k != nil && len(out) < max; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) != next {
				break
			}
			ev, err := fsm.DecodeEvent(v)
			if err != nil {
				return fmt.Errorf("archive %s seq %d: %w", world, next, err)
			}
			out = append(out, ev)
			next++
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

// prune deletes, in every world, the events beyond the retention bounds:
// those older than minTime (leader time; 0 = no age bound) and all but the
// newest keep (0 = no count bound). It works in transactions of at most
// batch deletions so that writers are not held up, and returns how many
// events it removed.
func (a *archive) prune(minTime int64, keep uint64, batch int) (int, error) {
	var worlds [][]byte
	err := a.db.View(func(tx *bolt.Tx) error {
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
			n, err := a.pruneWorld(w, minTime, keep, batch)
			total += n
			if err != nil {
				return total, err
			}
			if n < batch {
				break
			}
		}
	}
	return total, nil
}

func (a *archive) pruneWorld(world []byte, minTime int64, keep uint64, batch int) (int, error) {
	n := 0
	err := a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(eventsBucket).Bucket(world)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		lastKey, _ := c.Last()
		if lastKey == nil {
			return nil
		}
		last := binary.BigEndian.Uint64(lastKey)
		for k, v := c.First(); k != nil && n < batch; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			tooMany := keep > 0 && last-seq >= keep
			tooOld := false
			if minTime > 0 && !tooMany {
				ev, err := fsm.DecodeEvent(v)
				if err != nil {
					return fmt.Errorf("archive %s seq %d: %w", world, seq, err)
				}
				tooOld = ev.Time < minTime
			}
			if !tooMany && !tooOld {
				break // seqs and leader times only grow: the rest stay
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// sync makes every write so far durable.
func (a *archive) sync() error { return a.db.Sync() }

func (a *archive) close() error {
	if err := a.db.Sync(); err != nil {
		a.db.Close()
		return err
	}
	return a.db.Close()
}
