package audit

import (
	"fmt"

	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// VerifyEvents checks events fetched from another node (a refill of a
// damaged event archive) against cp, a checkpoint of this log the caller
// trusts: a signed one opened with the audit key, or the log's own. The
// log's tree of cp.Size events must have cp.Root (recomputed here from the
// stored hashes), and each event must be the leaf of its seq in that tree:
// its leaf, encoded with the frozen leaf encoding, checked by an inclusion
// proof against cp.Root. It returns how many leading events it verified.
// An event past cp.Size stops it without an error (nothing to check it
// against); an event that is not its seq's leaf is ErrProof; a checkpoint
// this log does not reach is ErrRange.
func (l *Log) VerifyEvents(cp Checkpoint, events ...*wire.Event) (int, error) {
	return l.VerifySaltedEvents(cp, events, nil)
}

// VerifySaltedEvents is VerifyEvents for a salted world's log: salted[i]
// says which ids events[i] salts (fsm.Event.Salted), as for AppendSalted.
// The check covers the leaf only: an event whose salted ids map a name
// to another player's HMAC would pass, so the caller checks the salted
// ids against the world's salt table first.
func (l *Log) VerifySaltedEvents(cp Checkpoint, events []*wire.Event, salted []wire.SaltedIDs) (int, error) {
	if salted != nil && len(salted) != len(events) {
		return 0, fmt.Errorf("audit log %s: %d events, %d saltings", l.world, len(events), len(salted))
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if cp.Origin != l.world || cp.Incarnation != l.inc {
		return 0, fmt.Errorf("%w: checkpoint of %q incarnation %d for the log of %q incarnation %d", ErrProof, cp.Origin, cp.Incarnation, l.world, l.inc)
	}
	if cp.Size < 0 || cp.Size > l.size {
		return 0, fmt.Errorf("%w: checkpoint of %d events (log of %d)", ErrRange, cp.Size, l.size)
	}
	root, err := tlog.TreeHash(cp.Size, l.store)
	if err != nil {
		return 0, fmt.Errorf("audit log %s: root of %d: %w", l.world, cp.Size, err)
	}
	if root != cp.Root {
		return 0, fmt.Errorf("%w: the log's tree of %d events is not the checkpoint's", ErrProof, cp.Size)
	}
	for i, e := range events {
		if e.World == l.world && e.Seq > uint64(cp.Size) {
			return i, nil
		}
		if e.World != l.world || e.Seq == 0 {
			return i, fmt.Errorf("%w: event %s/%d in the log of %s", ErrProof, e.World, e.Seq, l.world)
		}
		p, err := tlog.ProveRecord(cp.Size, int64(e.Seq)-1, l.store)
		if err != nil {
			return i, fmt.Errorf("audit log %s: prove seq %d: %w", l.world, e.Seq, err)
		}
		h := LeafHash(e)
		if l.leaf == wire.AuditLeafV2 {
			var s wire.SaltedIDs
			if salted != nil {
				s = salted[i]
			}
			h = LeafHashV2(e, s)
		}
		if err := checkInclusion(cp, e, h, p); err != nil {
			return i, err
		}
	}
	return len(events), nil
}
