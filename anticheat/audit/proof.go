package audit

import (
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrProof: a proof that does not show what it was given for.
var ErrProof = errors.New("gsd/audit: proof does not check")

// CheckInclusion checks, by a proof from Log.ProveInclusion(e.Seq,
// cp.Size), that e is the event of its seq in the log cp commits to: how
// a player or an auditor holding one event and a signed checkpoint shows
// that the event was committed as it reads.
func CheckInclusion(cp Checkpoint, e *wire.Event, p tlog.RecordProof) error {
	return checkInclusion(cp, e, LeafHash(e), p)
}

// CheckSaltedInclusion is CheckInclusion for a salted world's event
// (leaf version 2): salted says which of its ids are salted, and their
// HMACs (wire.SaltedAt over the world's salts, GET .../audit/salts).
func CheckSaltedInclusion(cp Checkpoint, e *wire.Event, salted wire.SaltedIDs, p tlog.RecordProof) error {
	return checkInclusion(cp, e, LeafHashV2(e, salted), p)
}

// checkInclusion is CheckInclusion of e whose leaf hash is h.
func checkInclusion(cp Checkpoint, e *wire.Event, h tlog.Hash, p tlog.RecordProof) error {
	if e.World != cp.Origin || e.Seq == 0 || int64(e.Seq) > cp.Size {
		return fmt.Errorf("%w: event %s/%d, checkpoint %s of %d events", ErrProof, e.World, e.Seq, cp.Origin, cp.Size)
	}
	if err := tlog.CheckRecord(p, cp.Size, cp.Root, int64(e.Seq)-1, h); err != nil {
		return fmt.Errorf("%w: seq %d in %s of %d events: %v", ErrProof, e.Seq, cp.Origin, cp.Size, err)
	}
	return nil
}

// CheckConsistency checks, by a proof from Log.ProveConsistency(older.Size,
// newer.Size), that the log newer commits to extends the one older commits
// to: nothing committed by then was rewritten.
func CheckConsistency(older, newer Checkpoint, p tlog.TreeProof) error {
	if older.Origin != newer.Origin || older.Incarnation != newer.Incarnation || older.Size > newer.Size {
		return fmt.Errorf("%w: %s of %d events is no prefix of %s of %d", ErrProof, older.Origin, older.Size, newer.Origin, newer.Size)
	}
	if older.Size == 0 {
		if older.Root != rootOf(nil) {
			return fmt.Errorf("%w: an empty log's root is %v, not %v", ErrProof, rootOf(nil), older.Root)
		}
		return nil
	}
	if err := tlog.CheckTree(p, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("%w: %s of %d events in %d: %v", ErrProof, older.Origin, older.Size, newer.Size, err)
	}
	return nil
}
