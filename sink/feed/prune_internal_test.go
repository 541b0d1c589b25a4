package feed

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// noWorlds is a Source of no world.
type noWorlds struct{ Source }

func (noWorlds) Worlds() []fsm.WorldInfo { return nil }

// The in-memory positions keep only the sessions the follower runs: a
// node that followed many short-lived worlds does not keep them all.
func TestPruneForgetsTheInMemoryPositionsOfWorldsNoLongerFollowed(t *testing.T) {
	r, err := NewReplicated(ReplicatedConfig{Sink: "webhook", Writer: "n1", Every: 1, Interval: time.Hour},
		func(string) (PositionGroup, error) { return nil, errors.New("no group") })
	require.NoError(t, err)
	for _, k := range []posKey{{"match-1", 10}, {"match-2", 20}, {"lobby", 5}, {"lobby", 7}, {"arena", 3}} {
		r.remember(k, savedPos{seq: 1})
	}
	n, err := r.Prune(context.Background(), noWorlds{}, map[string]int64{"lobby": 7, "arena": 0})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, r.saved, 2)
	require.Contains(t, r.saved, posKey{"lobby", 7})
	require.Contains(t, r.saved, posKey{"arena", 3})
	// Between two Intervals too.
	_, err = r.Prune(context.Background(), noWorlds{}, nil)
	require.NoError(t, err)
	require.Empty(t, r.saved)
}

// uncomparable is a led group that cannot be a map key (a slice field).
type uncomparable struct {
	PositionGroup
	worlds []fsm.WorldInfo
}

func (u uncomparable) Worlds() []fsm.WorldInfo { return u.worlds }
func (u uncomparable) Entities(string) ([]fsm.EntityView, uint64, error) {
	panic("not read: the group is skipped")
}
func (u uncomparable) IsLeader() bool { return true }

// oneWorld is a Source of one world.
type oneWorld struct{ Source }

func (oneWorld) Worlds() []fsm.WorldInfo { return []fsm.WorldInfo{{ID: "w", Incarnation: 3}} }

func TestPruneSkipsAGroupItCannotTellApartInsteadOfPanicking(t *testing.T) {
	g := uncomparable{worlds: []fsm.WorldInfo{{ID: "w", Incarnation: 3}}}
	r, err := NewReplicated(ReplicatedConfig{Sink: "webhook", Writer: "n1", Every: 1, Interval: time.Nanosecond},
		func(string) (PositionGroup, error) { return g, nil })
	require.NoError(t, err)
	n, err := r.Prune(context.Background(), oneWorld{}, nil)
	require.NoError(t, err)
	require.Zero(t, n)
}
