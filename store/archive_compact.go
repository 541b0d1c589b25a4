package store

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// compactSuffix names the compacted copy while it is being written.
const compactSuffix = ".compact"

// compactMinFree is the least free space worth a compaction: below it the
// copy costs more than the bytes it returns.
const compactMinFree = 1 << 20

func (a *archive) view(fn func(*bolt.Tx) error) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.db.View(fn)
}

func (a *archive) update(fn func(*bolt.Tx) error) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.db.Update(fn)
}

// space returns the size of the archive's data (bbolt's high-water mark,
// the file less its preallocated tail) and how much of it is free pages
// (what retention deleted, kept by bbolt for reuse: the file never
// shrinks).
func (a *archive) space() (size, free int64, err error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	err = a.db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	s := a.db.Stats()
	return size, int64(s.FreePageN+s.PendingPageN) * int64(a.db.Info().PageSize), err
}

// compactWorth says whether data of size bytes with free bytes of free
// pages is worth a compaction: at least compactMinFree free, and half the
// data or more (a compacted file has next to none, so one prune's worth
// of deletions does not compact again and again).
func compactWorth(size, free int64) bool {
	return free >= compactMinFree && 2*free >= size
}

// compact rewrites the archive into a new file holding only what is live
// (bbolt.Compact) and swaps it in: the way retention gives disk space
// back. Every other use of the archive waits meanwhile (the feed's
// writer keeps its events pending, readers block), so it runs after a
// prune freed at least half the file. It returns the file's size before
// and after.
func (a *archive) compact() (before, after int64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	path := a.db.Path()
	tmp := path + compactSuffix
	if st, err := os.Stat(path); err == nil {
		before = st.Size()
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return before, before, fmt.Errorf("compact event archive: %w", err)
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return before, before, fmt.Errorf("compact event archive: %w", err)
	}
	if err := errors.Join(bolt.Compact(dst, a.db, 4<<20), dst.Sync()); err != nil {
		dst.Close()
		os.Remove(tmp)
		return before, before, fmt.Errorf("compact event archive: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return before, before, fmt.Errorf("compact event archive: %w", err)
	}
	// Everything the old file holds is in the copy (synced): swap.
	if err := a.db.Close(); err != nil {
		return before, before, fmt.Errorf("compact event archive: close: %w", err)
	}
	renameErr := os.Rename(tmp, path)
	db, err := openBolt(path) // the copy, or the old file when the rename failed
	if err != nil {
		return before, before, fmt.Errorf("compact event archive: reopen %s: %w", path, errors.Join(renameErr, err))
	}
	db.NoSync = true
	a.db = db
	if renameErr != nil {
		os.Remove(tmp)
		return before, before, fmt.Errorf("compact event archive: %w", renameErr)
	}
	if st, err := os.Stat(path); err == nil {
		after = st.Size()
	}
	return before, after, nil
}

// compactIfWorth compacts the archive when retention freed enough of it
// (compactWorth) and logs the outcome.
func (f *feed) compactIfWorth() {
	size, free, err := f.arch.space()
	if err != nil || !compactWorth(size, free) {
		return
	}
	start := time.Now()
	before, after, err := f.arch.compact()
	if err != nil {
		f.log.Error("event archive compaction failed", "err", err)
		return
	}
	f.log.Info("event archive compacted", "bytes_before", before, "bytes_after", after, "took", time.Since(start))
}
