package audit

import (
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// HashStore keeps a tree's stored hashes (tlog.StoredHashes): an
// append-only array indexed by stored-hash index. A Log appends each batch
// of events' hashes in one call, so a store that writes the call
// atomically never holds half an event.
type HashStore interface {
	// ReadHashes returns the hashes at the given indexes, all below Count.
	ReadHashes(indexes []int64) ([]tlog.Hash, error)
	// AppendHashes stores hashes at indexes start, start+1, ...; start is
	// always the count stored so far. It must not keep the slice: the
	// caller reuses it.
	AppendHashes(start int64, hashes []tlog.Hash) error
	// Count returns the number of hashes stored.
	Count() (int64, error)
}

// MemStore is a HashStore in memory: for tests, benchmarks, and the
// offline verifier. It is safe for concurrent use.
type MemStore struct {
	mu     sync.RWMutex
	hashes []tlog.Hash
}

// ReadHashes implements HashStore.
func (m *MemStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("gsd/audit: no stored hash %d (%d stored)", x, len(m.hashes))
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// AppendHashes implements HashStore.
func (m *MemStore) AppendHashes(start int64, hashes []tlog.Hash) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if start != int64(len(m.hashes)) {
		return fmt.Errorf("gsd/audit: append at %d, %d stored", start, len(m.hashes))
	}
	m.hashes = append(m.hashes, hashes...)
	return nil
}

// Count implements HashStore.
func (m *MemStore) Count() (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.hashes)), nil
}

// treeSize returns the number of records whose stored hashes number count,
// or an error when no number of records stores exactly count hashes (a
// store cut in the middle of a record).
func treeSize(count int64) (int64, error) {
	// StoredHashCount grows with n and is at least n, so n is in [0, count].
	lo, hi := int64(0), count
	for lo < hi {
		mid := lo + (hi-lo)/2
		if tlog.StoredHashCount(mid) < count {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if tlog.StoredHashCount(lo) != count {
		return 0, fmt.Errorf("%w: %d stored hashes are not a whole number of events", ErrCorrupt, count)
	}
	return lo, nil
}

// pendingReader reads a store's hashes and those of a batch not stored yet,
// which start at index base. Its answers are valid until its next call.
type pendingReader struct {
	store   HashStore
	base    int64
	pending []tlog.Hash
	stored  []int64     // scratch
	out     []tlog.Hash // scratch
}

func (r *pendingReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	r.stored = r.stored[:0]
	for _, x := range indexes {
		if x < r.base {
			r.stored = append(r.stored, x)
		}
	}
	var old []tlog.Hash
	if len(r.stored) > 0 {
		var err error
		if old, err = r.store.ReadHashes(r.stored); err != nil {
			return nil, err
		}
		if len(old) != len(r.stored) {
			return nil, fmt.Errorf("%w: read %d hashes, got %d", ErrCorrupt, len(r.stored), len(old))
		}
	}
	r.out = r.out[:0]
	for _, x := range indexes {
		if x < r.base {
			r.out, old = append(r.out, old[0]), old[1:]
		} else {
			r.out = append(r.out, r.pending[x-r.base])
		}
	}
	return r.out, nil
}
