package store

import (
	"encoding/binary"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	bolt "go.etcd.io/bbolt"
)

// Range is a world's seqs From to To, inclusive.
type Range struct {
	World string `json:"world"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
}

// Len returns how many seqs the range holds.
func (r Range) Len() uint64 { return r.To - r.From + 1 }

// setPruned records that retention deleted world's events up to seq
// (inside a write transaction); the mark only grows.
func setPruned(tx *bolt.Tx, world []byte, seq uint64) error {
	b := tx.Bucket(prunedBucket)
	if v := b.Get(world); len(v) == 8 && binary.BigEndian.Uint64(v) >= seq {
		return nil
	}
	return b.Put(world, seqKey(seq))
}

// markPruned records that world's events up to seq are gone for good
// (no node holds them any more): as if retention had deleted them here.
func (a *archive) markPruned(world string, seq uint64) error {
	return a.update(func(tx *bolt.Tx) error { return setPruned(tx, []byte(world), seq) })
}

// pruned returns the newest seq of world that retention deleted (0: none).
func (a *archive) pruned(world string) (uint64, error) {
	var seq uint64
	err := a.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(prunedBucket).Get([]byte(world)); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err
}

// holes returns the ranges of world's seqs above floor and up to hi that
// no run holds, in seq order.
func (a *archive) holes(world string, floor, hi uint64) ([]Range, error) {
	var out []Range
	err := a.view(func(tx *bolt.Tx) error {
		next := floor + 1
		if b := tx.Bucket(eventsBucket).Bucket([]byte(world)); b != nil {
			c := b.Cursor()
			for k, v := c.First(); k != nil && next <= hi; k, v = c.Next() {
				r, err := decodeRun(k, v)
				if err != nil {
					return fmt.Errorf("archive %s: %w", world, err)
				}
				if r.first > next {
					out = append(out, Range{World: world, From: next, To: min(r.first-1, hi)})
				}
				next = max(next, r.last()+1)
			}
		}
		if next <= hi {
			out = append(out, Range{World: world, From: next, To: hi})
		}
		return nil
	})
	return out, err
}

// covered reports whether a run of b holds seq.
func covered(b *bolt.Bucket, seq uint64) (bool, error) {
	c := b.Cursor()
	if k, _ := c.Seek(seqKey(seq)); k != nil && binary.BigEndian.Uint64(k) == seq {
		return true, nil
	}
	k, v := c.Prev()
	if k == nil {
		return false, nil
	}
	r, err := decodeRun(k, v)
	if err != nil {
		return false, err
	}
	return r.last() >= seq, nil
}

// fill stores events of one world that fill holes: events the archive
// holds already are skipped, whatever their content (a refill never
// rewrites an event). It returns how many it stored. Unlike write it may
// store below the newest run, so it checks every event's seq.
//
// current, called inside the transaction, returns the world's incarnation
// in the applied state, false once it was deleted: events of another
// incarnation are skipped. The feed's writer drops a deleted world's
// events after the state applied the delete, in a transaction of its own,
// so a fill racing a delete either sees it or is dropped by it, and never
// leaves a deleted world's events behind.
func (a *archive) fill(world string, events []*fsm.Event, current func() (uint64, bool)) (int, error) {
	stored := 0
	err := a.update(func(tx *bolt.Tx) error {
		stored = 0
		inc, ok := current()
		if !ok {
			return nil
		}
		b, err := tx.Bucket(eventsBucket).CreateBucketIfNotExists([]byte(world))
		if err != nil {
			return err
		}
		var body, rec []byte
		for len(events) > 0 {
			held, err := covered(b, events[0].Seq)
			if err != nil {
				return fmt.Errorf("archive %s: %w", world, err)
			}
			if held || events[0].World != world || events[0].Index < inc {
				events = events[1:]
				continue
			}
			body = body[:0]
			n := 0
			for n < len(events) && (n == 0 || events[n].Seq == events[n-1].Seq+1) && events[n].World == world && events[n].Index >= inc {
				if n > 0 {
					if held, err = covered(b, events[n].Seq); err != nil || held {
						break
					}
				}
				rec = fsm.AppendEvent(rec[:0], events[n])
				if n > 0 && len(body)+binary.MaxVarintLen64+len(rec) > maxRunBytes {
					break
				}
				body = binary.AppendUvarint(body, uint64(len(rec)))
				body = append(body, rec...)
				n++
			}
			if err != nil {
				return fmt.Errorf("archive %s: %w", world, err)
			}
			val := binary.AppendUvarint(nil, uint64(n))
			val = binary.AppendVarint(val, events[n-1].Time)
			val = append(val, body...)
			if err := b.Put(seqKey(events[0].Seq), val); err != nil {
				return err
			}
			stored += n
			events = events[n:]
		}
		return nil
	})
	return stored, err
}

// records returns the stored encodings (fsm.EncodeEvent) of up to max
// contiguous events of world from the first seq at or after from that it
// holds (first), and at most about maxBytes of them (always one when one
// is held). An empty result: nothing at or after from is held.
func (a *archive) records(world string, from uint64, max, maxBytes int) (first uint64, out [][]byte, err error) {
	first = from
	err = a.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(eventsBucket).Bucket([]byte(world))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.Seek(seqKey(from))
		if k == nil || binary.BigEndian.Uint64(k) > from {
			if k, v = c.Prev(); k == nil {
				k, v = c.First()
			}
		}
		next, size := from, 0
		for ; k != nil && len(out) < max && size < maxBytes; k, v = c.Next() {
			r, err := decodeRun(k, v)
			if err != nil {
				return fmt.Errorf("archive %s: %w", world, err)
			}
			if r.last() < next {
				continue
			}
			if r.first > next {
				if len(out) > 0 {
					break // a hole
				}
				first, next = r.first, r.first // nothing held from from to here
			}
			p := r.body
			for seq := r.first; seq <= r.last() && len(out) < max && size < maxBytes; seq++ {
				n, w := binary.Uvarint(p)
				if w <= 0 || n > uint64(len(p)-w) {
					return fmt.Errorf("%w: archive %s run %d truncated", fsm.ErrMalformed, world, r.first)
				}
				if seq >= next {
					out = append(out, append([]byte(nil), p[w:w+int(n)]...))
					size += int(n)
				}
				p = p[w+int(n):]
			}
			next = r.last() + 1
		}
		return nil
	})
	return first, out, err
}
