package shard

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// A world's old homes on this node: its groups here that hold it fenced
// with a move to its home, of the incarnation the home imported. A world
// that came to its home twice (C->B->A->B) has two, C and A, but only A's
// fence is the one B's import continues (the world's seq at the import):
// C's events after its fence are B's earlier stay's, A's after its own
// are B's now. oldHome is the continuing one, what the readers of seqs up
// to its fence and the archive's copy take; the others still hold the
// events up to their fences, which the copy takes from them too.

// localHome is one of a world's old homes on this node.
type localHome struct {
	st    *store.Store
	fence fsm.Fence
	// continues: home's import continues this fence.
	continues bool
}

// localHomes returns world's old homes on this node towards home, the
// highest fence first (the continuing one, when this node runs it).
func (b *Backend) localHomes(world string, home *store.Store) []localHome {
	info, err := home.World(world)
	if err != nil || info.Imported == 0 {
		return nil
	}
	gid, ok := b.groupID(home)
	if !ok {
		return nil
	}
	var out []localHome
	for _, g := range b.r.mgr.Groups() {
		st, ok := b.r.mgr.Group(g)
		if !ok || st == home {
			continue
		}
		w, err := st.World(world)
		if err != nil || w.Moved == nil || w.Incarnation != info.Incarnation || w.Moved.Shard != gid {
			continue
		}
		out = append(out, localHome{st: st, fence: *w.Moved, continues: continues(home, info, w.Moved.Seq)})
	}
	slices.SortFunc(out, func(x, y localHome) int { return cmp.Compare(y.fence.Seq, x.fence.Seq) })
	return out
}

// continues reports whether home's import of the world (info) continues
// a fence at seq fence towards home: the world's seq at the import was
// fence. The event after a fence towards home was committed on home:
// after the import (its log index above info.Imported) for the import's
// fence, before it for an earlier stay's. With no event after the fence
// yet, the import is the last thing home did with the world (a fence
// beyond the world's seq is none it continues: home holds no event after
// it). The event's index comes from home's hash history (below the
// world's seq: the point at its seq carries the world's index, not the
// event's), else from its feed or archive; when home holds neither it
// cannot tell: false, and the copy asks peers.
func continues(home *store.Store, info fsm.WorldInfo, fence uint64) bool {
	if fence == info.Seq {
		return true
	}
	if fence+1 < info.Seq {
		if p, err := home.Hash(info.ID, fence+1); err == nil {
			return p.Index > info.Imported
		}
	}
	if ev, ok := home.Event(info.ID, fence+1); ok {
		return ev.Index > info.Imported
	}
	return false
}

// localPages reads world's events from its old homes on this node, each
// for the seqs up to its fence (the world's events there are the same
// history up to it): the first that holds a page's first seq serves it.
// A seq none holds is an empty page (CopyMovedArchive: ErrOldHomeLacks).
func localPages(world string, homes []localHome) ArchivePages {
	return func(ctx context.Context, from uint64, max int) ([]*fsm.Event, error) {
		for _, h := range homes {
			if from > h.fence.Seq {
				continue
			}
			evs, err := ArchiveOf(h.st, world)(ctx, from, int(min(uint64(max), h.fence.Seq-from+1)))
			if err == nil && len(evs) > 0 && evs[0] != nil && evs[0].Seq == from {
				return evs, nil
			}
		}
		return nil, nil
	}
}

// copyMoved copies world w's events from before its import on home
// (group g) that home lacks (CopyMovedArchives): from its old homes on
// this node, each for the seqs up to its fence, then, unless the one
// home's import continues is among them and served every hole, from
// another node of g (peers; none when nil: the seqs no old home here
// holds wait for a sweep that has peers). done: nothing up to the
// import's fence is missing any more.
func (b *Backend) copyMoved(ctx context.Context, peers store.RefillPeers, g uint64, home *store.Store, w fsm.WorldInfo, page int) (int, bool, error) {
	homes := b.localHomes(w.ID, home)
	var n int
	var err error
	if len(homes) > 0 {
		n, err = CopyMovedArchive(ctx, home, localPages(w.ID, homes), w.ID, homes[0].fence.Seq, page)
		if err == nil && homes[0].continues {
			return n, true, nil
		}
	}
	if peers == nil {
		if len(homes) > 0 && homes[0].continues {
			return n, false, err // the old home lacks events: as before, an error
		}
		return n, false, nil
	}
	k, perr := b.copyFromPeers(ctx, peers, g, home, w, page)
	if perr != nil {
		return n + k, false, errors.Join(err, perr)
	}
	return n + k, true, nil
}
