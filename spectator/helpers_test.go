package spectator

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// testingT is what the helpers need of *testing.T and *rapid.T.
type testingT interface {
	require.TestingT
	Helper()
}

// game drives a real FSM, one action per batch, and keeps its events.
type game struct {
	t      testingT
	world  string
	f      *fsm.FSM
	index  uint64
	time   int64
	seqs   map[string]uint64
	events []*fsm.Event
}

const t0 = int64(1_700_000_000_000_000_000)

func newGame(t testingT, world string, fields map[string]fsm.FieldRule) *game {
	t.Helper()
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	g := &game{t: t, world: world, f: f, time: t0, seqs: make(map[string]uint64)}
	res := g.apply(fsm.Command{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: world, Origin: "local",
		Rules: fsm.Rules{Fields: fields}}})
	require.NoError(t, res.Err)
	return g
}

func (g *game) apply(cmd fsm.Command) fsm.Result {
	g.t.Helper()
	g.index++
	g.time += int64(time.Second)
	res := g.f.ApplyBatch(g.index, &fsm.Batch{Time: g.time, Commands: []fsm.Command{cmd}})
	require.Len(g.t, res, 1)
	return res[0]
}

// act applies one action of player and returns its event.
func (g *game) act(player string, ops ...fsm.Op) *fsm.Event {
	g.t.Helper()
	g.seqs[player]++
	r := g.apply(fsm.Command{Kind: fsm.CmdAction, Action: &fsm.Action{World: g.world, Player: player,
		Seq: g.seqs[player], Ops: ops}})
	require.NoError(g.t, r.Err)
	require.NotNil(g.t, r.Event)
	g.events = append(g.events, r.Event)
	return r.Event
}

func set(entity, field string, v fsm.Value) fsm.Op {
	return fsm.Op{Kind: fsm.OpSet, Entity: entity, Field: field, Value: v}
}

func incr(entity, field string, by int64) fsm.Op {
	return fsm.Op{Kind: fsm.OpIncr, Entity: entity, Field: field, By: by}
}

func add(entity, field string, v fsm.Value) fsm.Op {
	return fsm.Op{Kind: fsm.OpAdd, Entity: entity, Field: field, Value: v}
}

func remove(entity, field string, v fsm.Value) fsm.Op {
	return fsm.Op{Kind: fsm.OpRemove, Entity: entity, Field: field, Value: v}
}

func del(entity string) fsm.Op { return fsm.Op{Kind: fsm.OpDelete, Entity: entity} }

func expect(o fsm.Op, v uint64) fsm.Op {
	o.Expect = fsm.Expect{Mode: fsm.ExpectVersion, Version: v}
	return o
}

// access compiles rules made of fields with visibilities, viewer classes
// and teams, and requires success.
func access(t testingT, vis map[string]string, viewers map[string]fsm.ViewerRule, teams fsm.TeamRule) *Access {
	t.Helper()
	r := fsm.Rules{Fields: map[string]fsm.FieldRule{}, Schema: fsm.Schema{Viewers: viewers, Teams: teams}}
	for f, v := range vis {
		r.Fields[f] = fsm.FieldRule{Type: fsm.KindString, Policy: fsm.PolicyAuthoritative}
		if v != "" {
			if r.Schema.Access == nil {
				r.Schema.Access = map[string]fsm.FieldAccess{}
			}
			r.Schema.Access[f] = fsm.FieldAccess{Visible: v}
		}
	}
	a, err := NewAccess(r)
	require.NoError(t, err)
	return a
}

func resolve(t testingT, a *Access, v Viewer) View {
	t.Helper()
	view, _, err := a.Resolve(v)
	require.NoError(t, err)
	return view
}

// feed is a fake world feed: a fanout.SubscribeFunc over a growing list
// of events, which can be made to fail.
type feed struct {
	mu      sync.Mutex
	evs     []*fsm.Event // evs[i].Seq == i+1
	err     error
	changed chan struct{}
}

func newFeed() *feed { return &feed{changed: make(chan struct{})} }

func (f *feed) push(evs ...*fsm.Event) {
	f.mu.Lock()
	f.evs = append(f.evs, evs...)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *feed) fail(err error) {
	f.mu.Lock()
	f.err = err
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *feed) subscribe(world string, from uint64) (fanout.Subscription, error) {
	return &feedSub{f: f, next: from}, nil
}

type feedSub struct {
	f    *feed
	next uint64
}

func (s *feedSub) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		s.f.mu.Lock()
		if s.f.err != nil {
			s.f.mu.Unlock()
			return nil, s.f.err
		}
		if int(s.next) <= len(s.f.evs) {
			out := s.f.evs[s.next-1:]
			s.next += uint64(len(out))
			s.f.mu.Unlock()
			return out, nil
		}
		ch := s.f.changed
		s.f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// decode decodes a frame's JSON.
func decodeKeyframe(t testingT, f *Frame) wire.Keyframe {
	t.Helper()
	require.Equal(t, wire.TypeKeyframe, f.Type)
	var k wire.Keyframe
	require.NoError(t, json.Unmarshal(f.Data, &k))
	return k
}

func decodeDelta(t testingT, f *Frame) wire.WatchDelta {
	t.Helper()
	require.Equal(t, wire.TypeWatchDelta, f.Type)
	var d wire.WatchDelta
	require.NoError(t, json.Unmarshal(f.Data, &d))
	return d
}

// client applies keyframes and deltas as a watcher would, to compare
// with the state its view should see.
type client struct {
	seq  uint64
	ents map[string]wire.WatchEntity
}

func (c *client) keyframe(k wire.Keyframe) {
	c.seq, c.ents = k.Seq, k.Entities
	if c.ents == nil {
		c.ents = map[string]wire.WatchEntity{}
	}
}

func (c *client) delta(d wire.WatchDelta) {
	c.seq = d.Seq
	for id, we := range d.Entities {
		switch {
		case we.Deleted:
			delete(c.ents, id)
			continue
		case we.Replace:
			if len(we.Fields) == 0 {
				delete(c.ents, id)
				continue
			}
			c.ents[id] = we
			continue
		}
		old := c.ents[id]
		fields := map[string]wire.WatchField{}
		for n, f := range old.Fields {
			fields[n] = f
		}
		for n, f := range we.Fields {
			fields[n] = f
		}
		c.ents[id] = wire.WatchEntity{Version: we.Version, Fields: fields}
	}
}

// requireSameEntities compares what two watchers hold, nil and empty
// alike.
func requireSameEntities(t testingT, want, got map[string]wire.WatchEntity) {
	t.Helper()
	norm := func(m map[string]wire.WatchEntity) map[string]wire.WatchEntity {
		out := map[string]wire.WatchEntity{}
		for id, we := range m {
			if len(we.Fields) == 0 {
				continue
			}
			we.Replace = false
			fields := map[string]wire.WatchField{}
			for n, f := range we.Fields {
				if len(f.Set) == 0 {
					f.Set = nil // JSON leaves an empty set out
				}
				fields[n] = f
			}
			we.Fields = fields
			out[id] = we
		}
		return out
	}
	require.Equal(t, norm(want), norm(got))
}
