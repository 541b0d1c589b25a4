package audit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// The package's errors.
var (
	// ErrGap: an event's seq is not the next one; the log refuses to skip.
	ErrGap = errors.New("gsd/audit: gap in the world's events")
	// ErrDiverged: an event already in the log came again with other content.
	ErrDiverged = errors.New("gsd/audit: event differs from the one logged")
	// ErrWrongWorld: an event of another world.
	ErrWrongWorld = errors.New("gsd/audit: event of another world")
	// ErrCorrupt: the hash store holds something no log could have written.
	ErrCorrupt = errors.New("gsd/audit: hash store corrupt")
	// ErrRange: a proof or a hash asked for beyond the log's size.
	ErrRange = errors.New("gsd/audit: beyond the log")
)

// LeafHash returns the RFC 6962 leaf hash of e: SHA-256 of 0x00 and its
// version 1 leaf (wire.AppendAuditLeaf).
func LeafHash(e *wire.Event) tlog.Hash {
	return tlog.RecordHash(wire.AppendAuditLeaf(nil, e))
}

// LeafHashV2 returns the leaf hash of e's version 2 leaf
// (wire.AppendAuditLeafV2), the ids salted says salted.
func LeafHashV2(e *wire.Event, salted wire.SaltedIDs) tlog.Hash {
	return tlog.RecordHash(wire.AppendAuditLeafV2(nil, e, salted))
}

// Log is one world incarnation's Merkle tree over its committed events:
// leaf i is the event of seq i+1. It is safe for concurrent use.
type Log struct {
	world string
	inc   uint64
	leaf  byte // wire.AuditLeafV1 or wire.AuditLeafV2

	mu    sync.RWMutex
	store HashStore
	size  int64
	buf   []byte        // scratch: 0x00 and a leaf, the input of its hash
	need  []int64       // scratch: the stored hashes a new leaf's subtrees need
	r     pendingReader // scratch: a batch's hashes (stores copy what they keep)
}

// Open returns the log of world kept in store, which holds its hashes so
// far (none for a new log): incarnation 0, a world from before
// incarnations (OpenIncarnation).
func Open(world string, store HashStore) (*Log, error) {
	return OpenIncarnation(world, 0, store)
}

// OpenIncarnation returns the log of world's incarnation inc
// (fsm.WorldInfo.Incarnation) kept in store.
func OpenIncarnation(world string, inc uint64, store HashStore) (*Log, error) {
	count, err := store.Count()
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", world, err)
	}
	size, err := treeSize(count)
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", world, err)
	}
	return &Log{world: world, inc: inc, leaf: wire.AuditLeafV1, store: store, size: size}, nil
}

// OpenSalted returns the log of a salted world's incarnation (fsm's
// salt table): its leaves are version 2 (wire.AppendAuditLeafV2), and
// its checkpoints say so.
func OpenSalted(world string, inc uint64, store HashStore) (*Log, error) {
	l, err := OpenIncarnation(world, inc, store)
	if err != nil {
		return nil, err
	}
	l.leaf = wire.AuditLeafV2
	return l, nil
}

// LeafVersion returns the version of the log's leaves.
func (l *Log) LeafVersion() byte { return l.leaf }

// World returns the world the log is of: its checkpoints' origin.
func (l *Log) World() string { return l.world }

// Incarnation returns the world incarnation the log is of.
func (l *Log) Incarnation() uint64 { return l.inc }

// Size returns the number of events logged: the seq of the last one.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size
}

// Append logs events, in order, as the committed feed delivers them. An
// event already logged is accepted again if its leaf is the same (the
// feed delivers at least once) and refused with ErrDiverged if not; an
// event past the next seq is refused with ErrGap. A refused batch logs
// nothing, and the store gets each batch in one AppendHashes call.
func (l *Log) Append(events ...*wire.Event) error {
	return l.AppendSalted(events, nil)
}

// AppendSalted is Append for a salted world's log: salted[i] says which
// ids events[i] salts (fsm.Event.Salted); a nil slice salts nothing. A
// version 1 log ignores it.
func (l *Log) AppendSalted(events []*wire.Event, salted []wire.SaltedIDs) error {
	if salted != nil && len(salted) != len(events) {
		return fmt.Errorf("audit log %s: %d events, %d saltings", l.world, len(events), len(salted))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.r
	r.store, r.base, r.pending = l.store, tlog.StoredHashCount(l.size), r.pending[:0]
	n := l.size
	for i, e := range events {
		if e.World != l.world {
			return fmt.Errorf("%w: %q in the log of %q", ErrWrongWorld, e.World, l.world)
		}
		if e.Seq == 0 || e.Seq > uint64(n)+1 {
			return fmt.Errorf("%w: seq %d after seq %d", ErrGap, e.Seq, n)
		}
		if l.leaf == wire.AuditLeafV2 {
			var s wire.SaltedIDs
			if salted != nil {
				s = salted[i]
			}
			l.buf = wire.AppendAuditLeafV2(append(l.buf[:0], 0), e, s)
		} else {
			l.buf = wire.AppendAuditLeaf(append(l.buf[:0], 0), e)
		}
		h := tlog.Hash(sha256.Sum256(l.buf)) // tlog.RecordHash, without its allocations
		if e.Seq <= uint64(n) {
			old, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(e.Seq)-1)})
			if err != nil {
				return fmt.Errorf("audit log %s: seq %d: %w", l.world, e.Seq, err)
			}
			if old[0] != h {
				return fmt.Errorf("%w: world %s seq %d", ErrDiverged, l.world, e.Seq)
			}
			continue
		}
		if err := l.storeLeaf(r, n, h); err != nil {
			return fmt.Errorf("audit log %s: seq %d: %w", l.world, e.Seq, err)
		}
		n++
	}
	if len(r.pending) > 0 {
		if err := l.store.AppendHashes(r.base, r.pending); err != nil {
			return fmt.Errorf("audit log %s: store seqs %d to %d: %w", l.world, l.size+1, n, err)
		}
	}
	l.size = n
	return nil
}

// storeLeaf adds to r.pending the stored hashes of leaf n, whose hash is
// h: as tlog.StoredHashesForRecordHash, with reused buffers. Leaf n
// completes one subtree per trailing 1 bit of n; each takes its left
// neighbour's hash.
func (l *Log) storeLeaf(r *pendingReader, n int64, h tlog.Hash) error {
	r.pending = append(r.pending, h)
	m := bits.TrailingZeros64(uint64(n + 1))
	if m == 0 {
		return nil
	}
	l.need = l.need[:0]
	for i := m - 1; i >= 0; i-- {
		l.need = append(l.need, tlog.StoredHashIndex(i, n>>uint(i)-1))
	}
	old, err := r.ReadHashes(l.need)
	if err != nil {
		return err
	}
	for i := range m {
		h = tlog.NodeHash(old[m-1-i], h)
		r.pending = append(r.pending, h)
	}
	return nil
}

// Checkpoint returns the log's checkpoint now: its world, size and root.
func (l *Log) Checkpoint() (Checkpoint, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	root, err := tlog.TreeHash(l.size, l.store)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit log %s: root: %w", l.world, err)
	}
	c := Checkpoint{Origin: l.world, Incarnation: l.inc, Size: l.size, Root: root}
	if l.leaf != wire.AuditLeafV1 {
		c.Leaf = l.leaf
	}
	return c, nil
}

// ProveInclusion returns the proof that the event of seq is in the tree
// of the first size events (tlog.CheckRecord checks it).
func (l *Log) ProveInclusion(seq uint64, size int64) (tlog.RecordProof, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if seq == 0 || size > l.size || int64(seq) > size {
		return nil, fmt.Errorf("%w: seq %d in a tree of %d (log of %d)", ErrRange, seq, size, l.size)
	}
	p, err := tlog.ProveRecord(size, int64(seq)-1, l.store)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: prove seq %d: %w", l.world, seq, err)
	}
	return p, nil
}

// ProveConsistency returns the proof that the tree of the first oldSize
// events is a prefix of the tree of the first newSize (tlog.CheckTree
// checks it).
func (l *Log) ProveConsistency(oldSize, newSize int64) (tlog.TreeProof, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if oldSize < 1 || oldSize > newSize || newSize > l.size {
		return nil, fmt.Errorf("%w: tree of %d in a tree of %d (log of %d)", ErrRange, oldSize, newSize, l.size)
	}
	p, err := tlog.ProveTree(newSize, oldSize, l.store)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: prove %d in %d: %w", l.world, oldSize, newSize, err)
	}
	return p, nil
}

// LeafHashes returns the leaf hashes of seqs from to to, inclusive: what
// an auditor gives VerifyLog to name changed events.
func (l *Log) LeafHashes(from, to uint64) ([]tlog.Hash, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if from == 0 || from > to || to > uint64(l.size) {
		return nil, fmt.Errorf("%w: seqs %d to %d (log of %d)", ErrRange, from, to, l.size)
	}
	idx := make([]int64, 0, to-from+1)
	for s := from; s <= to; s++ {
		idx = append(idx, tlog.StoredHashIndex(0, int64(s)-1))
	}
	hs, err := l.store.ReadHashes(idx)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: leaf hashes: %w", l.world, err)
	}
	return hs, nil
}
