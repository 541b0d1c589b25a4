package relay

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// Checking the events a relay holds against the signed tree's leaves
// (issues 13 and 15). A verifying relay hashes each event it receives,
// as the upstream sent it, into its audit leaf (wire.AppendAuditLeaf, the
// leaf a node logs: leaf i is the event of seq i+1) and keeps the right
// edge of the RFC 6962 tree over them from seq 1 of the follow (a
// leafRange: O(log n) hashes, no event or leaf kept). It compares that
// tree with the checkpoints it accepted during the follow:
//
//   - one of exactly the range's size: the roots must be equal;
//   - one of more events: compared when the range reaches its size (the
//     event that completes it is checked before the relay holds it; the
//     oldest such one, so that a delayed view gets there);
//   - one of fewer events (the relay is ahead of the node's signing): the
//     upstream's consistency proof must tie it to the range as it was at
//     the previous round (a size the node's tree surely holds by then).
//
// A mismatch means the upstream sent events that are not the signed
// history (one altered, dropped, inserted or reordered): the relay drops
// the upstream as for a refused checkpoint (reason "leaves"). Only a
// relay whose events are whole gets checkpoints (a node gives them to
// anyone for a world that restricts no field, whose events it cuts for
// no view; for one that does, only to game servers, admins and the
// cluster secret: edge.Core.GuardHashes), and a whole stream skips no
// seq; so a seq the upstream skipped is refused as soon as an accepted
// checkpoint covers it (a filtered relay gets no checkpoint, and checks
// no leaf). A follow whose first event is not seq 1 (the upstream no
// longer has the start), or whose checkpoints change incarnation, cannot
// build the tree: the relay says so, counts it
// (gsd_relay_leaf_checks_skipped_total{reason}) and checks no leaf for
// that follow. gsd_relay_leaf_checks_total counts the sizes verified.
//
// There is no mode that serves only verified events: what the relay
// passes on before a mismatch is found has been served; what it finds
// wrong drops the upstream.

// ReasonLeaves is the refusal of events that are not the signed tree's
// leaves (gsd_relay_checkpoint_failures_total's reason).
const ReasonLeaves = "leaves"

// The reasons a follow's leaves are not checked
// (gsd_relay_leaf_checks_skipped_total's reason).
const (
	skipLate        = "late_start"  // the first event received is not seq 1
	skipGap         = "gap"         // the upstream skipped a seq (a filtered view's)
	skipIncarnation = "incarnation" // the checkpoints' incarnation changed during the follow
	skipSalted      = "salted"      // the tree's leaves are salted per player (version 2): the relay has no salts
)

// leafRange is the right edge of an RFC 6962 Merkle tree (hashed as
// golang.org/x/mod/sumdb/tlog does) over the leaves added: the root of
// each perfect subtree of the size's binary decomposition, largest first.
type leafRange struct {
	size int64
	edge []tlog.Hash
}

// add appends the leaf whose hash is h (tlog.RecordHash of the leaf).
func (r *leafRange) add(h tlog.Hash) {
	r.edge = append(r.edge, h)
	// Leaf n completes one subtree per trailing 1 bit of n.
	for n := r.size; n&1 == 1; n >>= 1 {
		k := len(r.edge)
		r.edge[k-2] = tlog.NodeHash(r.edge[k-2], r.edge[k-1])
		r.edge = r.edge[:k-1]
	}
	r.size++
}

// root returns the tree's root: tlog.TreeHash of its size (the zero hash
// for no leaf, never compared).
func (r *leafRange) root() tlog.Hash {
	if len(r.edge) == 0 {
		return tlog.Hash{}
	}
	h := r.edge[len(r.edge)-1]
	for i := len(r.edge) - 2; i >= 0; i-- {
		h = tlog.NodeHash(r.edge[i], h)
	}
	return h
}

// leafCheck is one follow's check of its events against the leaves. add
// runs on the follow's reading goroutine, round on its verifier.
type leafCheck struct {
	c     *checkpoints
	world string
	log   *slog.Logger
	buf   []byte // the reader's scratch: 0x00 and a leaf

	mu       sync.Mutex
	rng      leafRange
	off      string            // why the follow's leaves are not checked ("": they are)
	gap      uint64            // the seq the upstream skipped (0: none): the range ends before it
	bound    bool              // the range is of incarnation inc (set by the first round)
	inc      uint64            // the incarnation of the checkpoints compared
	pending  *audit.Checkpoint // accepted, of more events than the range: compared when it gets there
	snap     snapshot          // the range at the previous round
	verified int64             // the most events verified
}

// snapshot is a range's size and root.
type snapshot struct {
	size int64
	root tlog.Hash
}

// newLeafCheck returns the leaf check of a follow of world (nil when the
// relay verifies nothing).
func newLeafCheck(c *checkpoints, world string, log *slog.Logger) *leafCheck {
	if c == nil {
		return nil
	}
	return &leafCheck{c: c, world: world, log: log}
}

// add hashes e, the next event the follow received, into the range, and
// compares the range with a pending checkpoint it reaches. An error
// refuses the upstream (ReasonLeaves).
func (l *leafCheck) add(e *wire.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.off != "" || l.gap != 0 {
		return nil
	}
	if want := uint64(l.rng.size) + 1; e.Seq != want {
		if l.rng.size == 0 {
			l.skipLocked(skipLate, fmt.Sprintf("the upstream's stream starts at seq %d, and the tree at seq 1", e.Seq))
			return nil
		}
		l.gap = want
		if p := l.pending; p != nil && uint64(p.Size) >= want {
			return l.failLocked(fmt.Sprintf("the upstream skipped seq %d, which the signed tree of %d events holds", want, p.Size))
		}
		// A view that hides fields skips seqs, and gets no checkpoint; a
		// full view skips none, and its next checkpoint refuses this.
		l.c.leavesSkipped.WithLabelValues(skipGap).Inc()
		l.log.Info("the upstream skipped a seq: the relay checks no later event against the audit tree's leaves",
			"world", l.world, "seq", want, "next", e.Seq)
		return nil
	}
	l.buf = wire.AppendAuditLeaf(append(l.buf[:0], 0), e)
	l.rng.add(tlog.Hash(sha256.Sum256(l.buf))) // tlog.RecordHash, without its allocation
	if p := l.pending; p != nil && p.Size == l.rng.size {
		l.pending = nil
		return l.compareLocked(*p)
	}
	return nil
}

// round compares the range with cp, the newest checkpoint accepted,
// fetching a proof with prove when cp is of fewer events than the range.
// An error that is no CheckpointError (the proof could not be fetched)
// leaves the next round to try again.
func (l *leafCheck) round(cp audit.Checkpoint, prove proveFunc) error {
	l.mu.Lock()
	snap := l.snap
	if l.off == "" && cp.Leaf != 0 {
		// A salted world's leaves commit to HMACs of the players' ids
		// under salts only moderators get (docs/ANTICHEAT.md).
		l.skipLocked(skipSalted, fmt.Sprintf("the tree's leaves are version %d, salted per player", cp.Leaf))
	}
	if l.off == "" { // after a gap too: the range before it still checks
		l.snap = snapshot{size: l.rng.size, root: l.rng.root()}
	}
	if l.off != "" || cp.Size == 0 || cp.Size <= l.verified && cp.Incarnation == l.inc || !l.incarnationLocked(cp) {
		l.mu.Unlock()
		return nil
	}
	switch {
	case l.gap != 0 && uint64(cp.Size) >= l.gap:
		defer l.mu.Unlock()
		return l.failLocked(fmt.Sprintf("the upstream skipped seq %d, which the signed tree of %d events holds", l.gap, cp.Size))
	case cp.Size == l.rng.size:
		defer l.mu.Unlock()
		return l.compareLocked(cp)
	case cp.Size > l.rng.size:
		// The oldest not reached yet: a relay whose view is delayed
		// longer than a round would never reach the newest.
		if l.pending == nil {
			l.pending = &cp
		}
		l.mu.Unlock()
		return nil
	case snap.size < cp.Size:
		l.mu.Unlock()
		return nil // the next round's snapshot is past it
	}
	l.mu.Unlock()
	ok := snap.root == cp.Root
	if snap.size != cp.Size {
		p, err := prove(cp.Size, snap.size, cp.Incarnation)
		if err != nil {
			return fmt.Errorf("proof of world %s's checkpoint of %d events in the %d received: %w", l.world, cp.Size, snap.size, err)
		}
		ok = tlog.CheckTree(p, snap.size, snap.root, cp.Size, cp.Root) == nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.off != "":
		return nil // refused or stopped meanwhile
	case !ok:
		return l.mismatchLocked(cp)
	}
	l.verifiedLocked(cp.Size)
	return nil
}

// compareLocked compares the range's root with cp's, of as many events.
func (l *leafCheck) compareLocked(cp audit.Checkpoint) error {
	if l.rng.root() != cp.Root {
		return l.mismatchLocked(cp)
	}
	l.verifiedLocked(cp.Size)
	return nil
}

func (l *leafCheck) verifiedLocked(size int64) {
	l.verified = max(l.verified, size)
	l.c.leavesVerified.Inc()
}

// mismatchLocked refuses the upstream whose events are not cp's leaves.
func (l *leafCheck) mismatchLocked(cp audit.Checkpoint) error {
	return l.failLocked(fmt.Sprintf("the events received do not hash to the signed tree of %d events (root %v)", cp.Size, cp.Root))
}

// failLocked refuses the upstream (counted once: the follow checks no
// more, and ends).
func (l *leafCheck) failLocked(detail string) error {
	l.off, l.pending = ReasonLeaves, nil
	return l.c.refuse(l.world, ReasonLeaves, detail)
}

// incarnationLocked binds the range to cp's incarnation, or reports
// false (and checks no more) when the checkpoints moved to another.
func (l *leafCheck) incarnationLocked(cp audit.Checkpoint) bool {
	if !l.bound {
		l.bound, l.inc = true, cp.Incarnation
		return true
	}
	if cp.Incarnation != l.inc {
		l.skipLocked(skipIncarnation, fmt.Sprintf("checkpoints of incarnation %d after %d", cp.Incarnation, l.inc))
		return false
	}
	return true
}

// skipLocked stops checking the follow's leaves, says why and counts it.
func (l *leafCheck) skipLocked(reason, detail string) {
	l.off, l.pending, l.rng = reason, nil, leafRange{}
	l.c.leavesSkipped.WithLabelValues(reason).Inc()
	l.log.Info("the relay cannot check this follow's events against the audit tree's leaves", "world", l.world,
		"reason", reason, "detail", detail)
}

// latest returns the newest checkpoint accepted of world.
func (c *checkpoints) latest(world string) (audit.Checkpoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	acc := c.worlds[world]
	if len(acc) == 0 {
		return audit.Checkpoint{}, false
	}
	return acc[len(acc)-1].cp, true
}
