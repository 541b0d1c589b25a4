package store

import (
	"context"

	"github.com/gsd-dev/gsd/fsm"
)

// A subscription that follows its world's moves (issue 14): a world
// fenced on this group (fsm.CmdMoveWorld, "moved to shard S at seq N")
// gets no event after N here, and goes on at its new home from N+1 (its
// seq is its version). A subscription given a MoveOpener asks it, once it
// has read every event up to N, for the new home's feed from N+1, and
// reads on from that one: its reader sees one seq sequence across the
// move, without a gap or a duplicate. The fence wakes the world's waiting
// subscribers (feed.fence), so the move is noticed when this replica
// applies the fence, not by a later poll. A subscription without an
// opener waits at the fence as before (a fenced world's readers end
// when its group drops it).

// MoveOpener opens the feed of a world that moved (fence) at its new
// home, from seq from on: the fence's seq + 1, or the reader's own start
// when it was opened beyond the world's head. It returns nil and no error when
// this node cannot follow the world there (it runs no replica of the new
// home): the subscription then waits at the fence as one without an
// opener does. An error ends the subscription's Next with it.
type MoveOpener func(ctx context.Context, fence fsm.Fence, from uint64) (*Subscription, error)

// FollowMoves makes s follow its world's moves through open (call it
// before the first Next; nil: wait at a fence).
func (s *Subscription) FollowMoves(open MoveOpener) { s.open = open }

// follow asks the opener for the world's feed at its new home, from s's
// next seq, once s has read up to fence.
func (s *Subscription) follow(ctx context.Context, fence fsm.Fence) error {
	sub, err := s.open(ctx, fence, s.next)
	switch {
	case err != nil:
		return err
	case sub == nil:
		s.stay = true
	default:
		s.moved = sub
	}
	return nil
}

// fence records world's fence, applied on this group, and wakes the
// world's waiting subscribers: those that read up to its seq and follow
// moves go on at the new home.
func (f *feed) fence(fc fsm.Fence) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setFenceLocked(fc)
	if t := f.tails[fc.World]; t != nil {
		t.wake()
	}
}

func (f *feed) setFenceLocked(fc fsm.Fence) {
	if f.fences == nil {
		f.fences = make(map[string]fsm.Fence)
	}
	f.fences[fc.World] = fc
}

// A world that moved away and back (fsm.CmdImportWorldBack: feed.adopt)
// has no fence here any more, and its tail starts over after the other
// home's events, which reach this group's archive only when the node
// copies them (shard.CopyMovedArchives). A subscription that had read up
// to the fence and did not call Next while the world was away would find
// neither the tail nor the archive holding its next seq (ErrArchiveGap):
// the feed keeps each such stay away (left), and the subscription follows
// its fence to the other home for the seqs the archive lacks, from where
// it comes back here in turn (that home's copy is fenced towards this
// group). The list holds one entry per move back of the world, until the
// world is dropped or a snapshot is restored.

// away is a stay of a world on another group: from the fence of its move
// away from this group up to back, the first seq of its return.
type away struct {
	fence fsm.Fence
	back  uint64
}

// leaveLocked records, when world moves back here (its tail starting
// over at next), the stay away its fence began.
func (f *feed) leaveLocked(world string, next uint64) {
	fc, ok := f.fences[world]
	if !ok || next <= fc.Seq+1 {
		return
	}
	if f.left == nil {
		f.left = make(map[string][]away)
	}
	f.left[world] = append(f.left[world], away{fence: fc, back: next})
}

// awayAt returns the fence of the stay away of world that seq falls in.
func (f *feed) awayAt(world string, seq uint64) (fsm.Fence, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.left[world] {
		if a.fence.Seq < seq && seq < a.back {
			return a.fence, true
		}
	}
	return fsm.Fence{}, false
}
