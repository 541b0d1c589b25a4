package shard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// A world's feed across its moves, for the edge's readers on this node
// (Backend.Subscribe: play connections and their hubs, spectators, event
// streams). A world fenced on its group ("moved to shard S at seq N")
// gets no event after N there; when this node runs a replica of S, the
// subscription goes on from S's replica here at N+1 as soon as that
// replica has applied the import (store.Subscription.FollowMoves): its
// reader sees one seq sequence, and a play connection stays open. On a
// node that runs no replica of S the subscription ends with world_moved
// (*fsm.MovedError) once it has read up to N: a play connection closes
// with 4421 at once, where it waited for a watcher round before, and a
// spectator or event stream ends likewise (it waited at the fence until
// the old group dropped the world). A subscription opened at the new home
// from a seq at or before the fence (a reader that was behind the move)
// reads the old home up to N first, when this node runs it and it still
// holds the fenced world, as the sinks' FeedSource does. A reader several
// moves behind follows each home's fence in turn (1->2->3), and one that
// read up to a fence before the world moved away and back follows the
// stay away first (store: feed.adopt). An action a play connection sent
// while the world moved is sent again at the new home once this node
// routes the world there (api/play/follow.go), within the request's time:
// a publish after it leaves the world_moved refusal (421) as the answer.

// followWait bounds how long a subscription that reached a fence waits
// for this node's replica of the new home to apply the world's import (a
// move stopped after its fence, or a target that refused it): then its
// Next ends with world_moved, and a play connection closes with 4421 as
// on a node without the new home.
var followWait = 30 * time.Second

// RunsGroup reports whether this node runs a replica of group g: a play
// connection of a world that moved there stays open here (api/play).
func (b *Backend) RunsGroup(g uint64) bool {
	_, ok := b.r.mgr.Group(g)
	return ok
}

// subscribe opens world's feed from seq from on st, its group on this
// node (or its old home, for seqs up to the fence of a move to st), and
// makes it follow the world's moves.
func (b *Backend) subscribe(st *store.Store, world string, from uint64) (*store.Subscription, error) {
	info, err := st.World(world)
	if err != nil {
		return nil, err
	}
	sub, err := st.Subscribe(world, from)
	if errors.Is(err, store.ErrArchiveGap) {
		if old, fence, ok := b.oldHome(world, st); ok && from <= fence.Seq {
			if head, oerr := old.Subscribe(world, from); oerr == nil {
				sub, err = head, nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	b.follow(sub, info.Incarnation)
	return sub, nil
}

// follow makes sub, of a world's incarnation inc, go on at the world's
// new home on this node when it moves.
func (b *Backend) follow(sub *store.Subscription, inc uint64) {
	sub.FollowMoves(func(ctx context.Context, f fsm.Fence, from uint64) (*store.Subscription, error) {
		return b.openMoved(ctx, f, from, inc)
	})
}

// openMoved opens the feed of incarnation inc of a world that moved (f)
// on this node's replica of its new home, from seq from (the fence's seq
// + 1 or later), once that replica has imported it; world_moved when this
// node runs no replica there.
//
// The copy there may be fenced itself: the world moved on (1->2->3), and
// the subscription follows that fence in turn. Such a copy continues f
// when its fence is past f's seq; one fenced at or before it is an
// earlier stay's, left there before the world moved back and away again
// (A->B->A->B), whose import of f is still to come.
func (b *Backend) openMoved(ctx context.Context, f fsm.Fence, from, inc uint64) (*store.Subscription, error) {
	st, ok := b.r.mgr.Group(f.Shard)
	if !ok {
		return nil, &fsm.MovedError{Fence: f}
	}
	wctx, cancel := context.WithTimeout(ctx, followWait)
	defer cancel()
	// The import usually commits a few milliseconds after the fence (the
	// move's next steps); its wait is short and bounded.
	for wait := time.Millisecond; ; wait = min(2*wait, 16*time.Millisecond) {
		if w, err := st.World(f.World); err == nil && w.Imported > 0 && w.Incarnation == inc && (w.Moved == nil || w.Moved.Seq > f.Seq) {
			sub, err := st.Subscribe(f.World, from)
			if err != nil {
				return nil, err
			}
			b.follow(sub, inc)
			return sub, nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w (this node's replica of shard %d has not imported it within %s)", &fsm.MovedError{Fence: f}, f.Shard, followWait)
		case <-time.After(wait):
		}
	}
}

// oldHome returns the group of this node that holds world fenced with a
// move to home's group, of the incarnation home imported, at the seq
// home's import continues (oldhome.go), and the fence. A world that came
// to home twice (C->B->A->B) has C fenced towards B too, at an earlier
// seq: it is no old home of this import (its events after its fence are
// B's earlier stay's), and on a node that runs C but not A there is none
// (a copy then takes A's events from a peer).
func (b *Backend) oldHome(world string, home *store.Store) (*store.Store, fsm.Fence, bool) {
	if homes := b.localHomes(world, home); len(homes) > 0 && homes[0].continues {
		return homes[0].st, homes[0].fence, true
	}
	return nil, fsm.Fence{}, false
}

// groupID returns the id of this node's group st.
func (b *Backend) groupID(st *store.Store) (uint64, bool) {
	for _, g := range b.r.mgr.Groups() {
		if got, ok := b.r.mgr.Group(g); ok && got == st {
			return g, true
		}
	}
	return 0, false
}
