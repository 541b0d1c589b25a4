// Package boltstore keeps an audit log's hashes (audit.HashStore) on disk
// in a bbolt file: one bucket per world under a top-level "gsd.audit"
// bucket, each stored hash under its index as 8 big-endian bytes. The
// hashes of one Append are written in one transaction, so a crash leaves
// whole events only, and the tree's size is derived from the last key.
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

// topBucket holds one bucket per world.
var topBucket = []byte("gsd.audit")

// Store is one world's hashes in a bolt file. It is safe for concurrent
// use (bolt serializes the writes).
type Store struct {
	db    *bbolt.DB
	world []byte
}

// New returns the store of world's hashes in db, creating its bucket.
func New(db *bbolt.DB, world string) (*Store, error) {
	if world == "" {
		return nil, errors.New("gsd/audit/boltstore: empty world")
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(topBucket)
		if err == nil {
			_, err = top.CreateBucketIfNotExists([]byte(world))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gsd/audit/boltstore: world %s: %w", world, err)
	}
	return &Store{db: db, world: []byte(world)}, nil
}

func (s *Store) bucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	if top := tx.Bucket(topBucket); top != nil {
		if b := top.Bucket(s.world); b != nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: the bucket of world %s is gone", audit.ErrCorrupt, s.world)
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
