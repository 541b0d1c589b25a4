// Package feed is what the sinks (sink/pg, sink/webhook, sink/files) read
// on a node: the worlds, their committed feed, who leads their group, and
// one held event. *store.Store serves it through NewStoreSource.
package feed

import (
	"context"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// Source is what a sink reads on one node: the worlds, their committed
// feed and who leads their group. *store.Store serves it through
// NewStoreSource; under a shard map, shard.FeedSource serves every group
// of the node through NewGroupsSource.
type Source interface {
	// Worlds lists the worlds this node knows.
	Worlds() []fsm.WorldInfo
	// World returns one world as this node knows it now (its
	// incarnation in particular); it wraps fsm.ErrUnknownWorld when the
	// node holds no such world.
	World(id string) (fsm.WorldInfo, error)
	// Subscribe opens world's committed feed from seq from (inclusive,
	// from >= 1); it wraps store.ErrArchiveGap when the node no longer
	// holds that event.
	Subscribe(world string, from uint64) (Subscription, error)
	// Event returns one committed event if this node holds it.
	Event(world string, seq uint64) (*fsm.Event, bool)
	// Leads reports whether this node leads world's group now.
	Leads(world string) bool
}

// Subscription reads a world's committed events in seq order without gaps
// (store.Subscription).
type Subscription interface {
	Next(ctx context.Context) ([]*fsm.Event, error)
}

// NewStoreSource returns the Source of a node's one Raft group: it leads
// every world when it leads the group.
func NewStoreSource(st *store.Store) Source { return storeSource{st} }

type storeSource struct{ st *store.Store }

func (s storeSource) Worlds() []fsm.WorldInfo { return s.st.Worlds() }

func (s storeSource) World(id string) (fsm.WorldInfo, error) { return s.st.World(id) }

func (s storeSource) Subscribe(world string, from uint64) (Subscription, error) {
	sub, err := s.st.Subscribe(world, from)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

func (s storeSource) Event(world string, seq uint64) (*fsm.Event, bool) {
	return s.st.Event(world, seq)
}

func (s storeSource) Leads(string) bool { return s.st.IsLeader() }
