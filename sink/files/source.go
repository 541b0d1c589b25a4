package files

import (
	"context"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// Source is what the sink reads on one node: the worlds, their committed
// feed and who leads their group (the same shape as sink/pg's Source).
type Source interface {
	// Worlds lists the worlds this node knows.
	Worlds() []fsm.WorldInfo
	// Subscribe opens world's committed feed from seq from (inclusive,
	// from >= 1); it wraps store.ErrArchiveGap when the node no longer
	// holds that event.
	Subscribe(world string, from uint64) (Subscription, error)
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

func (s storeSource) Subscribe(world string, from uint64) (Subscription, error) {
	sub, err := s.st.Subscribe(world, from)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

func (s storeSource) Leads(string) bool { return s.st.IsLeader() }
