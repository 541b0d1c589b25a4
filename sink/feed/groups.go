package feed

import "github.com/gsd-dev/gsd/fsm"

// Groups is a Source whose subscriptions have their own type: the node's
// groups under a shard map (*shard.FeedSource, which does not import the
// sinks).
type Groups[S Subscription] interface {
	Worlds() []fsm.WorldInfo
	World(id string) (fsm.WorldInfo, error)
	Subscribe(world string, from uint64) (S, error)
	Event(world string, seq uint64) (*fsm.Event, bool)
	Leads(world string) bool
}

// NewGroupsSource returns the Source of g: under a shard map, every group
// the node runs, each world led where its group is led.
func NewGroupsSource[S Subscription](g Groups[S]) Source { return groupsSource[S]{g} }

type groupsSource[S Subscription] struct{ g Groups[S] }

func (s groupsSource[S]) Worlds() []fsm.WorldInfo { return s.g.Worlds() }

func (s groupsSource[S]) World(id string) (fsm.WorldInfo, error) { return s.g.World(id) }

func (s groupsSource[S]) Subscribe(world string, from uint64) (Subscription, error) {
	sub, err := s.g.Subscribe(world, from)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

func (s groupsSource[S]) Event(world string, seq uint64) (*fsm.Event, bool) {
	return s.g.Event(world, seq)
}

func (s groupsSource[S]) Leads(world string) bool { return s.g.Leads(world) }
