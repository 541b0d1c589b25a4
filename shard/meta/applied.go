package meta

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// snapshotPoll is how often waitApplied also looks at raft's snapshot
// index: a replica that installs a snapshot holding the index applies
// no entry for it, and raft records the snapshot's index only after the
// FSM's Restore returned.
const snapshotPoll = 20 * time.Millisecond

// waitApplied waits until this node's replica has applied the entry at
// index: Apply has seen it, or a snapshot at or after it was restored
// (or taken, which this replica does only of what it applied). It gives
// up with ErrBehind when ctx ends or after ApplyTimeout.
func (g *Group) waitApplied(ctx context.Context, index uint64) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ApplyTimeout)
	defer cancel()
	if g.snapshotIndex() >= index {
		return nil
	}
	t := time.NewTicker(snapshotPoll)
	defer t.Stop()
	for {
		changed := g.fsm.changes()
		if g.fsm.Applied() >= index {
			return nil
		}
		select {
		case <-changed:
		case <-t.C:
			// raft.Stats is not cheap: the snapshot index is looked at
			// only on the ticks.
			if g.snapshotIndex() >= index {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: the meta leader applied it at index %d, %s has applied up to %d: %w",
				ErrBehind, index, g.cfg.ID, max(g.fsm.Applied(), g.snapshotIndex()), ctx.Err())
		}
	}
}

// snapshotIndex is the index of raft's last snapshot on this node, taken
// or installed (0 when none).
func (g *Group) snapshotIndex() uint64 {
	i, _ := strconv.ParseUint(g.raft.Stats()["last_snapshot_index"], 10, 64)
	return i
}
