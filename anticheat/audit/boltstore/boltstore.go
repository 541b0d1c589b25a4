// Package boltstore keeps the audit trees' hashes (audit.HashStore) on
// disk in a bbolt file: one tree per world incarnation, under the
// top-level bucket "gsd.audit.inc", a bucket per world and in it a bucket
// per incarnation (8 big-endian bytes), each stored hash under its index
// as 8 big-endian bytes; the texts of deleted incarnations' tombstones
// under "gsd.audit.tombstones", world, incarnation; a tree's leaf version
// when not 1 under "gsd.audit.leaf", world, incarnation. The hashes of one
// Append are written in one transaction, so a crash leaves whole events
// only, and the tree's size is derived from the last key.
//
// A file written before incarnations holds one tree per world under
// "gsd.audit": the first Open of the world after the upgrade (the
// auditor opens its current incarnation) adopts it as that
// incarnation's tree, in one transaction. A world deleted and created
// again under the older code then stops on a diverged event as it did.
//
// It lives apart from package audit so that audit, which gsdctl links
// for offline verification, links no database. A gsd node keeps its
// trees in a file of their own, <data-dir>/audit.db (cmd/gsd/audit.go).
package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

var (
	legacyBucket    = []byte("gsd.audit")            // world: hashes (before incarnations)
	treesBucket     = []byte("gsd.audit.inc")        // world: incarnation: hashes
	tombstoneBucket = []byte("gsd.audit.tombstones") // world: incarnation: text
	leafBucket      = []byte("gsd.audit.leaf")       // world: incarnation: leaf version (1 byte)
)

func incKey(inc uint64) []byte { return binary.BigEndian.AppendUint64(nil, inc) }

// Trees is a node's audit trees in a bolt file.
type Trees struct{ db *bbolt.DB }

// NewTrees returns the trees kept in db.
func NewTrees(db *bbolt.DB) *Trees { return &Trees{db: db} }

// Open returns the store of world's incarnation inc, creating it (and
// adopting the world's tree from before incarnations, if any).
func (t *Trees) Open(world string, inc uint64) (audit.HashStore, error) {
	if world == "" {
		return nil, errors.New("gsd/audit/boltstore: empty world")
	}
	err := t.db.Update(func(tx *bbolt.Tx) error {
		fresh := tx.Bucket(treesBucket) == nil || tx.Bucket(treesBucket).Bucket([]byte(world)) == nil
		b, err := nested(tx, treesBucket, []byte(world), incKey(inc))
		if err == nil && fresh {
			err = adopt(tx, b, world)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gsd/audit/boltstore: world %s incarnation %d: %w", world, inc, err)
	}
	return &Store{db: t.db, world: []byte(world), inc: incKey(inc)}, nil
}

// nested returns the bucket at path, creating what is missing.
func nested(tx *bbolt.Tx, path ...[]byte) (*bbolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(path[0])
	for _, name := range path[1:] {
		if err != nil {
			break
		}
		b, err = b.CreateBucketIfNotExists(name)
	}
	return b, err
}

// adopt moves world's tree from before incarnations, if there is one,
// into b, a new incarnation's empty bucket.
func adopt(tx *bbolt.Tx, b *bbolt.Bucket, world string) error {
	legacy := tx.Bucket(legacyBucket)
	if legacy == nil || legacy.Bucket([]byte(world)) == nil {
		return nil
	}
	b.FillPercent = 1
	err := legacy.Bucket([]byte(world)).ForEach(func(k, v []byte) error { return b.Put(k, v) })
	return errors.Join(err, legacy.DeleteBucket([]byte(world)))
}

// Incarnations returns the incarnations of world whose trees the file
// holds, oldest first.
func (t *Trees) Incarnations(world string) ([]uint64, error) {
	var out []uint64
	err := t.db.View(func(tx *bbolt.Tx) error {
		top := tx.Bucket(treesBucket)
		if top == nil || top.Bucket([]byte(world)) == nil {
			return nil
		}
		return top.Bucket([]byte(world)).ForEach(func(k, _ []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("%w: world %s: incarnation key %x", audit.ErrCorrupt, world, k)
			}
			out = append(out, binary.BigEndian.Uint64(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("gsd/audit/boltstore: incarnations of %s: %w", world, err)
	}
	return out, nil
}

// Worlds returns the worlds whose trees the file holds (a file from
// before incarnations: those adopted so far).
func (t *Trees) Worlds() ([]string, error) {
	var out []string
	err := t.db.View(func(tx *bbolt.Tx) error {
		if top := tx.Bucket(treesBucket); top != nil {
			return top.ForEach(func(k, _ []byte) error { out = append(out, string(k)); return nil })
		}
		return nil
	})
	return out, err
}

// Tombstone returns the text of the tombstone of world's incarnation inc,
// "" when it has none.
func (t *Trees) Tombstone(world string, inc uint64) (text string, err error) {
	err = t.db.View(func(tx *bbolt.Tx) error {
		if top := tx.Bucket(tombstoneBucket); top != nil {
			if wb := top.Bucket([]byte(world)); wb != nil {
				text = string(wb.Get(incKey(inc)))
			}
		}
		return nil
	})
	return text, err
}

// PutTombstone keeps the text of the tombstone of world's incarnation inc.
func (t *Trees) PutTombstone(world string, inc uint64, text string) error {
	err := t.db.Update(func(tx *bbolt.Tx) error {
		b, err := nested(tx, tombstoneBucket, []byte(world))
		if err != nil {
			return err
		}
		return b.Put(incKey(inc), []byte(text))
	})
	if err != nil {
		return fmt.Errorf("gsd/audit/boltstore: tombstone of %s incarnation %d: %w", world, inc, err)
	}
	return nil
}

// LeafVersion returns the leaf version kept for world's incarnation inc's
// tree, 0 when none was.
func (t *Trees) LeafVersion(world string, inc uint64) (v byte, err error) {
	err = t.db.View(func(tx *bbolt.Tx) error {
		if top := tx.Bucket(leafBucket); top != nil {
			if wb := top.Bucket([]byte(world)); wb != nil {
				if b := wb.Get(incKey(inc)); len(b) == 1 {
					v = b[0]
				}
			}
		}
		return nil
	})
	return v, err
}

// PutLeafVersion keeps the leaf version of world's incarnation inc's tree.
func (t *Trees) PutLeafVersion(world string, inc uint64, v byte) error {
	err := t.db.Update(func(tx *bbolt.Tx) error {
		b, err := nested(tx, leafBucket, []byte(world))
		if err != nil {
			return err
		}
		if old := b.Get(incKey(inc)); len(old) == 1 && old[0] == v {
			return nil // kept already: no write
		}
		return b.Put(incKey(inc), []byte{v})
	})
	if err != nil {
		return fmt.Errorf("gsd/audit/boltstore: leaf version of %s incarnation %d: %w", world, inc, err)
	}
	return nil
}

// Store is one world incarnation's hashes in a bolt file. It is safe for
// concurrent use (bolt serializes the writes).
type Store struct {
	db    *bbolt.DB
	world []byte
	inc   []byte
}

func (s *Store) bucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	if top := tx.Bucket(treesBucket); top != nil {
		if w := top.Bucket(s.world); w != nil {
			if b := w.Bucket(s.inc); b != nil {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: the bucket of world %s incarnation %d is gone", audit.ErrCorrupt, s.world, binary.BigEndian.Uint64(s.inc))
}

// count returns the number of hashes in b: the last index plus one.
func count(b *bbolt.Bucket) (int64, error) {
	k, _ := b.Cursor().Last()
	if k == nil {
		return 0, nil
	}
	if len(k) != 8 {
		return 0, fmt.Errorf("%w: key %x", audit.ErrCorrupt, k)
	}
	return int64(binary.BigEndian.Uint64(k)) + 1, nil
}

// Count implements audit.HashStore.
func (s *Store) Count() (n int64, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		b, err := s.bucket(tx)
		if err != nil {
			return err
		}
		n, err = count(b)
		return err
	})
	return n, err
}

// ReadHashes implements audit.HashStore.
func (s *Store) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := s.bucket(tx)
		if err != nil {
			return err
		}
		var k [8]byte // Get keeps no reference to it
		for i, x := range indexes {
			binary.BigEndian.PutUint64(k[:], uint64(x))
			v := b.Get(k[:])
			if len(v) != tlog.HashSize {
				return fmt.Errorf("%w: world %s: stored hash %d has %d bytes", audit.ErrCorrupt, s.world, x, len(v))
			}
			out[i] = tlog.Hash(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendHashes implements audit.HashStore, in one transaction.
func (s *Store) AppendHashes(start int64, hashes []tlog.Hash) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := s.bucket(tx)
		if err != nil {
			return err
		}
		n, err := count(b)
		if err != nil {
			return err
		}
		if start != n {
			return fmt.Errorf("gsd/audit/boltstore: world %s: append at %d, %d stored", s.world, start, n)
		}
		b.FillPercent = 1 // keys only ever grow
		// Put keeps its key and value until the commit: one array holds
		// the batch's keys, and the values are the caller's hashes, which
		// stay put until this call returns.
		keys := make([]byte, 8*len(hashes))
		for i := range hashes {
			k := keys[8*i : 8*i+8 : 8*i+8]
			binary.BigEndian.PutUint64(k, uint64(start+int64(i)))
			err = errors.Join(err, b.Put(k, hashes[i][:]))
		}
		return err
	})
}
