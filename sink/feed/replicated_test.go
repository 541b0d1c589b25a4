package feed_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// posGroup is an in-memory PositionGroup: one world of int fields with
// versions, applying expects as the fsm does.
type posGroup struct {
	mu      sync.Mutex
	created bool
	rules   fsm.Rules
	seq     map[string]int64
	version map[string]uint64
	acts    int
	fail    error // returned by every call when set
}

func newPosGroup() *posGroup {
	return &posGroup{seq: map[string]int64{}, version: map[string]uint64{}}
}

func (g *posGroup) CreateWorld(_ context.Context, id string, rules fsm.Rules) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.created {
		return fsm.ErrWorldExists
	}
	g.created, g.rules = true, rules
	return nil
}

func (g *posGroup) Act(_ context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return nil, false, g.fail
	}
	if !g.created {
		return nil, false, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, a.World)
	}
	g.acts++
	op := a.Ops[0]
	v, exists := g.version[op.Entity]
	ok := (op.Expect.Mode == fsm.ExpectAbsent && !exists) || (op.Expect.Mode == fsm.ExpectVersion && exists && op.Expect.Version == v)
	if !ok {
		return &fsm.Event{Status: fsm.StatusConflict}, false, nil
	}
	g.seq[op.Entity], g.version[op.Entity] = op.Value.Int, v+1
	return &fsm.Event{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: op.Entity, Field: op.Field, Version: v + 1}}}, false, nil
}

func (g *posGroup) Entity(_ context.Context, world, id string, _ store.Consistency) (fsm.EntityView, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return fsm.EntityView{}, g.fail
	}
	if !g.created {
		return fsm.EntityView{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	v, ok := g.version[id]
	if !ok {
		return fsm.EntityView{}, fmt.Errorf("%w: %s", fsm.ErrNotFound, id)
	}
	return fsm.EntityView{ID: id, Fields: []fsm.FieldView{{Name: "seq", Value: fsm.Int(g.seq[id]), Version: v}}}, nil
}

func newRep(t *testing.T, g *posGroup, writer string, every uint64, interval time.Duration) *feed.Replicated {
	t.Helper()
	r, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "webhook", Writer: writer, Every: every, Interval: interval},
		func(string) (feed.PositionGroup, error) { return g, nil })
	require.NoError(t, err)
	return r
}

// Two nodes that both believe they lead write the same position: the
// expect on the version makes the later write of a lower seq a no-op,
// never a step back, and the first write creates the reserved world with
// its rules.
func TestReplicatedPositionNeverMovesBackwards(t *testing.T) {
	ctx := context.Background()
	g := newPosGroup()
	a, b := newRep(t, g, "a", 1, time.Hour), newRep(t, g, "b", 1, time.Hour)
	wrote, err := a.Save(ctx, "w", feed.Position{Incarnation: 7, Seq: 10}, false)
	require.NoError(t, err)
	require.True(t, wrote)
	require.Equal(t, feed.PositionsRules(), g.rules)
	require.Equal(t, "hidden", g.rules.Schema.Access["seq"].Visible)
	require.Equal(t, "server", g.rules.Schema.Access["seq"].Write)

	// b read nothing yet; it loads, then a moves on, then b's stale write.
	seq, found, err := b.Load(ctx, "w", 7)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, uint64(10), seq)
	_, err = a.Save(ctx, "w", feed.Position{Incarnation: 7, Seq: 30}, false)
	require.NoError(t, err)
	wrote, err = b.Save(ctx, "w", feed.Position{Incarnation: 7, Seq: 20}, false)
	require.NoError(t, err)
	require.False(t, wrote, "a lower seq after a conflict is not written")
	seq, _, err = b.Load(ctx, "w", 7)
	require.NoError(t, err)
	require.Equal(t, uint64(30), seq)

	// A conflict with a lower stored seq is retried over the new version.
	_, err = a.Save(ctx, "w", feed.Position{Incarnation: 7, Seq: 40}, false)
	require.NoError(t, err)
	wrote, err = b.Save(ctx, "w", feed.Position{Incarnation: 7, Seq: 50}, false)
	require.NoError(t, err)
	require.True(t, wrote)
	seq, _, err = a.Load(ctx, "w", 7)
	require.NoError(t, err)
	require.Equal(t, uint64(50), seq)

	// Another incarnation is another entity.
	_, found, err = a.Load(ctx, "w", 8)
	require.NoError(t, err)
	require.False(t, found)
}

// Positions are written once Every events passed since the last write, or
// Interval, or when forced; never for an unknown incarnation or seq 0.
func TestReplicatedPositionIsWrittenEveryNEventsOrWhenForced(t *testing.T) {
	ctx := context.Background()
	g := newPosGroup()
	r := newRep(t, g, "a", 10, time.Hour)
	for _, p := range []feed.Position{{Incarnation: 0, Seq: 5}, {Incarnation: 3, Seq: 0}} {
		wrote, err := r.Save(ctx, "w", p, true)
		require.NoError(t, err)
		require.False(t, wrote)
	}
	var writes int
	for seq := uint64(1); seq <= 35; seq++ {
		wrote, err := r.Save(ctx, "w", feed.Position{Incarnation: 3, Seq: seq}, false)
		require.NoError(t, err)
		if wrote {
			writes++
		}
	}
	require.Equal(t, 4, writes, "seq 1, 11, 21, 31")
	wrote, err := r.Save(ctx, "w", feed.Position{Incarnation: 3, Seq: 35}, true)
	require.NoError(t, err)
	require.True(t, wrote)
	wrote, err = r.Save(ctx, "w", feed.Position{Incarnation: 3, Seq: 35}, true)
	require.NoError(t, err)
	require.False(t, wrote, "nothing new")

	quick := newRep(t, g, "b", 1000, time.Nanosecond)
	_, _, err = quick.Load(ctx, "w", 3)
	require.NoError(t, err)
	wrote, err = quick.Save(ctx, "w", feed.Position{Incarnation: 3, Seq: 36}, false)
	require.NoError(t, err)
	require.True(t, wrote, "the interval passed")
}

// A world name too long for an entity id is hashed into one; failures of
// the group are returned (and the next save reads the position again).
func TestReplicatedPositionOfALongWorldNameAndFailures(t *testing.T) {
	ctx := context.Background()
	g := newPosGroup()
	r := newRep(t, g, "a", 1, time.Hour)
	long := strings.Repeat("w", fsm.MaxNameLen)
	_, err := r.Save(ctx, long, feed.Position{Incarnation: 1, Seq: 3}, false)
	require.NoError(t, err)
	seq, found, err := r.Load(ctx, long, 1)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, uint64(3), seq)
	for id := range g.seq {
		require.LessOrEqual(t, len(id), fsm.MaxNameLen)
	}

	boom := errors.New("boom")
	g.fail = boom
	_, err = r.Save(ctx, long, feed.Position{Incarnation: 1, Seq: 4}, true)
	require.ErrorIs(t, err, boom)
	_, _, err = r.Load(ctx, long, 1)
	require.ErrorIs(t, err, boom)
	_, err = r.Save(ctx, "fresh", feed.Position{Incarnation: 1, Seq: 4}, true)
	require.ErrorIs(t, err, boom, "the first save reads the stored position")
	// After a failure, unforced saves wait for the interval.
	wrote, err := r.Save(ctx, long, feed.Position{Incarnation: 1, Seq: 9}, false)
	require.NoError(t, err)
	require.False(t, wrote)
	g.fail = nil
	_, err = r.Save(ctx, long, feed.Position{Incarnation: 1, Seq: 4}, true)
	require.NoError(t, err)

	noGroup, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "files", Writer: "a", Every: 1, Interval: time.Second},
		func(string) (feed.PositionGroup, error) { return nil, store.ErrNotLeader })
	require.NoError(t, err)
	_, _, err = noGroup.Load(ctx, "w", 1)
	require.ErrorIs(t, err, store.ErrNotLeader)
	_, err = noGroup.Save(ctx, "w", feed.Position{Incarnation: 1, Seq: 1}, true)
	require.ErrorIs(t, err, store.ErrNotLeader)
}

func TestReplicatedConfigIsValidated(t *testing.T) {
	group := func(string) (feed.PositionGroup, error) { return nil, nil }
	for _, cfg := range []feed.ReplicatedConfig{
		{Writer: "a", Every: 1, Interval: time.Second},
		{Sink: "s", Every: 1, Interval: time.Second},
		{Sink: "s", Writer: "a", Interval: time.Second},
		{Sink: "s", Writer: "a", Every: 1},
	} {
		_, err := feed.NewReplicated(cfg, group)
		require.Error(t, err, "%+v", cfg)
	}
	_, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "s", Writer: "a", Every: 1, Interval: time.Second}, nil)
	require.Error(t, err)
}
