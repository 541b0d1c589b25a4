package shard

import (
	"context"
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// FeedSource is what the sinks (sink/pg, sink/webhook, sink/files) read
// on a node that runs a shard map: the worlds of every group this node
// runs, each from the group the map places it on (Backend.Worlds), their
// committed feed, and whether this node leads the world's group now. A
// world's sink runs on the leader of the world's group, so a leadership
// change of one group moves the mirroring of that group's worlds only.
// sink/feed.NewGroupsSource adapts it to feed.Source (shard does not
// import the sinks).
//
// A world that moved (Move) continues at its new home at the fence's
// seq N+1, and the new home's archive starts there until this node
// copied events up to N into it (CopyMovedArchives). Until then a sink
// that had not delivered up to N reads the rest from the old home when
// this node runs that group and it still holds the fenced world
// (Subscribe); otherwise the new home answers store.ErrArchiveGap, which
// the sinks count and report (their archive_gap metrics).
type FeedSource struct{ b *Backend }

// NewFeedSource returns the sinks' source over b's groups.
func NewFeedSource(b *Backend) *FeedSource { return &FeedSource{b: b} }

// Subscription reads a world's committed events in seq order without
// gaps (store.Subscription, or one that crosses a world's move).
type Subscription interface {
	Next(ctx context.Context) ([]*fsm.Event, error)
}

// Worlds lists the worlds of every group this node runs, each once, from
// the group the map places it on.
func (s *FeedSource) Worlds() []fsm.WorldInfo { return s.b.Worlds() }

// World returns world's summary from its group on this node.
func (s *FeedSource) World(id string) (fsm.WorldInfo, error) { return s.b.World(id) }

// Leads reports whether this node leads world's group now.
func (s *FeedSource) Leads(world string) bool {
	st, err := s.b.group(world)
	return err == nil && st.IsLeader()
}

// Event returns one committed event of world if this node holds it: from
// the world's group, or, for a seq up to a move's fence, from the old
// home while this node runs it.
func (s *FeedSource) Event(world string, seq uint64) (*fsm.Event, bool) {
	st, err := s.b.group(world)
	if err != nil {
		return nil, false
	}
	if ev, ok := st.Event(world, seq); ok {
		return ev, true
	}
	if old, fence, ok := s.b.oldHome(world, st); ok && seq <= fence.Seq {
		return old.Event(world, seq)
	}
	return nil, false
}

// Subscribe opens world's committed feed from seq from on its group. When
// the group does not hold from because the world moved there after it
// (an import whose archive starts at the fence's N+1), the subscription
// reads from the old home up to N and then from the new home, when this
// node runs the old home and it still holds the fenced world; else it
// wraps store.ErrArchiveGap.
func (s *FeedSource) Subscribe(world string, from uint64) (Subscription, error) {
	st, err := s.b.group(world)
	if err != nil {
		return nil, err
	}
	sub, err := st.Subscribe(world, from)
	if err == nil {
		return sub, nil
	}
	if !errors.Is(err, store.ErrArchiveGap) {
		return nil, err
	}
	old, fence, ok := s.b.oldHome(world, st)
	if !ok || from > fence.Seq {
		if info, ierr := st.World(world); ierr == nil && info.Imported > 0 && !ok {
			return nil, fmt.Errorf("%w (the world moved to this group; its old home, which holds the events before, is not on this node or dropped it)", err)
		}
		return nil, err
	}
	head, oerr := old.Subscribe(world, from)
	if oerr != nil {
		return nil, fmt.Errorf("%w (and its old home: %w)", err, oerr)
	}
	return &movedSub{world: world, head: head, fence: fence.Seq, home: st, next: from}, nil
}

// Home returns the group the map places world on now (0 while the map
// has no shards): the group whose feed Subscribe opens. The auditor
// starts a world's follower again when it changes (a move between two
// groups of this node).
func (s *FeedSource) Home(world string) uint64 {
	g, err := shardOf(s.b.r.src.View(), world)
	if err != nil {
		return 0
	}
	return g
}

// Placed reports whether the map has shards: until then Worlds lists
// every group's worlds, and nothing says where a world lives.
func (s *FeedSource) Placed() bool { return len(s.b.r.src.View().Map.Shards) > 0 }

// Away reports whether world's incarnation inc, which Worlds does not
// list, lives on elsewhere rather than was deleted: the map places it on
// a group this node does not run (it moved there), or a group of this
// node holds it fenced by a move of that incarnation (its new home has
// not imported it here yet, or this node's map is behind), or the map
// has no shards yet (nothing is known). The auditor only words its
// answers with it (moving, or not listed yet); it buries on Deleted.
func (s *FeedSource) Away(world string, inc uint64) bool {
	g, err := shardOf(s.b.r.src.View(), world)
	if err != nil {
		return true // no shards yet: where it lives is not known, so not deleted
	}
	if _, ok := s.b.r.mgr.Group(g); !ok {
		return true
	}
	for _, id := range s.b.r.mgr.Groups() {
		st, ok := s.b.r.mgr.Group(id)
		if !ok {
			continue
		}
		if w, err := st.World(world); err == nil && w.Moved != nil && w.Incarnation == inc {
			return true
		}
	}
	return false
}

// Deleted reports whether a group of this node applied the deletion of
// world's incarnation inc while it lived there, not fenced
// (store.Store.Deleted): positive evidence that the incarnation ended,
// which neither its absence from Worlds (a group or this node's map may
// lag) nor a group's drop of it after a move is. The auditor writes a
// tombstone only then.
func (s *FeedSource) Deleted(world string, inc uint64) bool {
	for _, id := range s.b.r.mgr.Groups() {
		if st, ok := s.b.r.mgr.Group(id); ok && st.Deleted(world, inc) {
			return true
		}
	}
	return false
}

// Group returns this node's replica of world's group: where the sinks
// keep the world's replicated positions (sink/feed.Replicated).
func (s *FeedSource) Group(world string) (*store.Store, error) { return s.b.group(world) }

// PlayerRecords reads world's players' data from its group on this node
// (sink/pg mirrors it).
func (s *FeedSource) PlayerRecords(world string) ([]fsm.PlayerRecord, error) {
	st, err := s.b.group(world)
	if err != nil {
		return nil, err
	}
	return st.PlayerRecords(world)
}

// PlayerDataStamp changes with every change of a player's data in world
// (fsm.FSM.PlayerDataStamp), read from its group on this node.
func (s *FeedSource) PlayerDataStamp(world string) (uint64, error) {
	st, err := s.b.group(world)
	if err != nil {
		return 0, err
	}
	return st.PlayerDataStamp(world)
}

// movedSub reads a moved world's events up to its fence from the old home,
// then from the new home (from the fence's seq + 1, where its archive
// starts).
type movedSub struct {
	world string
	head  *store.Subscription // the old home's, until next passes fence
	fence uint64
	home  *store.Store
	tail  *store.Subscription
	next  uint64
}

// Next returns the next events in seq order, never one past the fence
// from the old home (it holds none: writes there are refused).
func (m *movedSub) Next(ctx context.Context) ([]*fsm.Event, error) {
	if m.next > m.fence {
		if m.tail == nil {
			tail, err := m.home.Subscribe(m.world, m.next)
			if err != nil {
				return nil, err
			}
			m.tail = tail
		}
		return m.tail.Next(ctx)
	}
	evs, err := m.head.Next(ctx)
	if err != nil {
		return nil, err
	}
	for i, ev := range evs {
		if ev.Seq > m.fence {
			evs = evs[:i]
			break
		}
	}
	if n := len(evs); n > 0 {
		m.next = evs[n-1].Seq + 1
	}
	return evs, nil
}
