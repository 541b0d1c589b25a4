package play

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// hubEvents prepares events as a hub does.
func hubEvents(t *testing.T, evs ...*fsm.Event) []*hubEvent {
	t.Helper()
	for _, ev := range evs {
		ev.World = "w"
		if ev.Status == 0 {
			ev.Status = fsm.StatusApplied
		}
	}
	out, err := bareServer(nil).prepare(evs, true)
	require.NoError(t, err)
	return out
}

func critEv(seq uint64, entity string) *fsm.Event {
	return &fsm.Event{Seq: seq, Player: "bob", Priority: fsm.PriorityCritical,
		Changes: []fsm.Change{{Entity: entity, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(int64(seq)), Version: seq}}}
}

func moveEv(seq uint64, entity string, x int64) *fsm.Event {
	return &fsm.Event{Seq: seq, Player: "bob", Priority: fsm.PriorityBulk,
		Changes: []fsm.Change{{Entity: entity, Field: "x", Op: fsm.OpSet, Value: fsm.Int(x), Version: seq}}}
}

// frames decodes what take returns.
func frames(t *testing.T, o *outbox) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range mustTake(t, o) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), "%s", b)
		out = append(out, m)
	}
	return out
}

// mustTake is o.take without an error.
func mustTake(t *testing.T, o *outbox) [][]byte {
	t.Helper()
	b, err := o.take()
	require.NoError(t, err)
	return b
}

func eventSeqs(m map[string]any) []uint64 {
	var s []uint64
	for _, ev := range m["events"].([]any) {
		s = append(s, uint64(ev.(map[string]any)["seq"].(float64)))
	}
	return s
}

func TestOutboxSendsCriticalAtOnceAndCoalescesBulkUntilTheTick(t *testing.T) {
	o := newOutbox(8, codecJSON)
	o.sent = prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"})
	o.start(10)
	evs := hubEvents(t, critEv(11, "e1"), moveEv(12, "p1", 1), moveEv(13, "p1", 2), moveEv(14, "p2", 7), critEv(15, "e1"),
		&fsm.Event{Seq: 16, Priority: fsm.PriorityBulk, Status: fsm.StatusRejected, Reason: "nope"})
	require.Equal(t, 6, o.offer(evs, nil))
	require.Equal(t, uint64(16), o.position())

	// Before the tick: only the critical events, in one frame; its seq
	// stops before the pending bulk changes, so an ack cannot skip them.
	got := frames(t, o)
	require.Len(t, got, 1)
	require.Equal(t, "events", got[0]["type"])
	require.Equal(t, []uint64{11, 15}, eventSeqs(got[0]))
	require.Equal(t, float64(11), got[0]["from"])
	require.Equal(t, float64(11), got[0]["seq"])
	require.Equal(t, uint64(11), o.coveredSeq())
	require.Equal(t, 2.0, testutil.ToFloat64(o.sent), "the frame's events are counted as sent")

	// The tick: one delta, the latest value per entity and field.
	o.onTick(1)
	got = frames(t, o)
	require.Len(t, got, 1)
	require.Equal(t, map[string]any{"type": "delta", "from": float64(12), "seq": float64(16), "tick": float64(1),
		"entities": map[string]any{
			"p1": map[string]any{"fields": map[string]any{"x": map[string]any{"value": float64(2), "version": float64(13)}}},
			"p2": map[string]any{"fields": map[string]any{"x": map[string]any{"value": float64(7), "version": float64(14)}}},
		}}, got[0])
	require.Equal(t, uint64(16), o.coveredSeq())
	require.Equal(t, 2.0, testutil.ToFloat64(o.sent), "a delta is not counted")

	// Nothing pending: a tick sends nothing; events already handled are skipped.
	o.onTick(2)
	require.Empty(t, mustTake(t, o))
	require.Equal(t, 2, o.offer(hubEvents(t, critEv(15, "e1"), critEv(16, "e1")), nil))
	require.Empty(t, mustTake(t, o))
}

func TestOutboxDeltaCarriesDeletesAndAProgressFrameFollowsFilteredEvents(t *testing.T) {
	o := newOutbox(8, codecJSON)
	del := &fsm.Event{Seq: 2, Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "p1", Op: fsm.OpDelete, Version: 1}}}
	require.Equal(t, 3, o.offer(hubEvents(t, moveEv(1, "p1", 5), del, moveEv(3, "p1", 9)), nil))
	o.onTick(1)
	got := frames(t, o)
	require.Len(t, got, 1)
	require.Equal(t, map[string]any{"deleted": float64(1), "fields": map[string]any{
		"x": map[string]any{"value": float64(9), "version": float64(3)}}}, got[0]["entities"].(map[string]any)["p1"])

	// Filtered events move the position; every progressTicks ticks an
	// empty delta says so.
	none := func(*hubEvent) bool { return false }
	require.Equal(t, 2, o.offer(hubEvents(t, critEv(4, "far"), moveEv(5, "far", 1)), none))
	require.Empty(t, mustTake(t, o))
	o.onTick(progressTicks - 1)
	require.Empty(t, mustTake(t, o))
	o.onTick(progressTicks)
	got = frames(t, o)
	require.Equal(t, []map[string]any{{"type": "delta", "from": float64(4), "seq": float64(5), "tick": float64(progressTicks),
		"entities": map[string]any{}}}, got)
}

func TestOutboxStopsAtAFullQueueAndGoesOnWhenTheWriterTakes(t *testing.T) {
	o := newOutbox(2, codecJSON)
	// One frame per offer: two fill the queue.
	require.Equal(t, 1, o.offer(hubEvents(t, critEv(1, "e")), nil))
	require.Equal(t, 1, o.offer(hubEvents(t, critEv(2, "e")), nil))
	evs := hubEvents(t, moveEv(3, "p", 1), critEv(4, "e"), critEv(5, "e"))
	require.Equal(t, 1, o.offer(evs, nil), "the bulk change merges; the critical event finds no room")
	require.Equal(t, uint64(3), o.position())
	select {
	case <-o.room:
		t.Fatal("no room before the writer takes")
	default:
	}
	got := frames(t, o)
	require.Len(t, got, 2)
	<-o.room
	require.Equal(t, 2, o.offer(evs[1:], nil))
	got = frames(t, o)
	require.Len(t, got, 1)
	require.Equal(t, []uint64{4, 5}, eventSeqs(got[0]))
	require.Equal(t, float64(2), got[0]["seq"], "the pending bulk change (3) is not covered yet")
}

func TestPrepareKeepsSetOpsAndCriticalAsEventsAndCoalescesTheRest(t *testing.T) {
	add := &fsm.Event{Seq: 1, Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "p", Field: "inv", Op: fsm.OpAdd, Value: fsm.String("gem")}}}
	conflict := &fsm.Event{Seq: 2, Priority: fsm.PriorityBulk, Status: fsm.StatusConflict,
		Changes: []fsm.Change{{Entity: "p", Field: "x", Value: fsm.Int(1), Version: 1, Exists: true}}}
	hevs := hubEvents(t, add, conflict, moveEv(3, "p", 4), critEv(4, "p"))
	require.NotNil(t, hevs[0].frame, "a set-policy add cannot coalesce")
	require.Nil(t, hevs[1].frame)
	require.Empty(t, hevs[1].delta, "a bulk conflict is only its player's business")
	require.Len(t, hevs[2].delta, 1)
	require.NotNil(t, hevs[3].frame)

	off, err := bareServer(nil).prepare([]*fsm.Event{moveEv(5, "p", 1)}, false)
	require.NoError(t, err)
	require.NotNil(t, off[0].frame, "coalescing off: bulk goes as events")

	bad := moveEv(6, "p", 1)
	bad.World = "w"
	bad.Changes[0].Value = fsm.Float(math.NaN())
	_, err = bareServer(nil).prepare([]*fsm.Event{critEv(6, "p"), {World: "w", Seq: 7, Changes: bad.Changes}}, true)
	require.ErrorIs(t, err, edge.ErrInternal)
}

func TestInterestConfigValidation(t *testing.T) {
	for _, c := range []InterestConfig{{Cell: -1}, {Cell: math.Inf(1)}, {Cell: 10}, {Cell: 10, X: "x"}, {Cell: 10, X: "x", Y: "y", Radius: -1}} {
		require.Error(t, c.Validate(), "%+v", c)
	}
	for _, c := range []InterestConfig{{}, {Team: "team"}, {Cell: 10, X: "x", Y: "y", Radius: 2, Team: "t"}} {
		require.NoError(t, c.Validate(), "%+v", c)
	}
	cfg := DefaultConfig()
	cfg.Interest.Radius = -1
	require.Error(t, cfg.Validate())
	cfg = DefaultConfig()
	cfg.TickInterval = 0
	require.Error(t, cfg.Validate())
}

// fakeEntities serves an interest index's lookups.
type fakeEntities map[string]map[string]fsm.Value

func (f fakeEntities) lookup(id string) (fsm.EntityView, error) {
	fields, ok := f[id]
	if !ok {
		return fsm.EntityView{}, fmt.Errorf("%w: %s", fsm.ErrNotFound, id)
	}
	v := fsm.EntityView{ID: id}
	for name, val := range fields {
		v.Fields = append(v.Fields, fsm.FieldView{Name: name, Value: val})
	}
	return v, nil
}

func TestInterestIndexDecidesByOwnEntityCellTeamAndGlobal(t *testing.T) {
	state := fakeEntities{
		"ann":   {"x": fsm.Int(50), "y": fsm.Int(50), "team": fsm.String("red")},
		"near":  {"x": fsm.Int(150), "y": fsm.Float(180.5)}, // cell (1,1): next to ann's (0,0)
		"far":   {"x": fsm.Int(950), "y": fsm.Int(950)},
		"mate":  {"x": fsm.Int(900), "y": fsm.Int(900), "team": fsm.String("red")},
		"enemy": {"x": fsm.Int(900), "y": fsm.Int(10), "team": fsm.String("blue")},
		"board": {"score": fsm.Int(1)},
		"odd":   {"x": fsm.String("left"), "y": fsm.Int(1)},
	}
	ix := newInterestIndex(InterestConfig{Cell: 100, X: "x", Y: "y", Radius: 1, Team: "team"}, state.lookup)
	touch := func(player string, entities ...string) *hubEvent {
		return &hubEvent{ev: &fsm.Event{Player: player}, entities: entities}
	}
	for _, c := range []struct {
		ev   *hubEvent
		want bool
	}{
		{touch("bob", "near"), true},
		{touch("bob", "far"), false},
		{touch("bob", "mate"), true},
		{touch("bob", "enemy"), false},
		{touch("bob", "board"), true},
		{touch("bob", "odd"), true}, // no numeric position: global
		{touch("bob", "ghost"), true},
		{touch("bob", "ann"), true},
		{touch("ann", "far"), true}, // ann's own action
		{touch("bob"), false},       // nothing touched (a rejection)
		{touch("bob", "far", "near"), true},
	} {
		require.Equal(t, c.want, ix.wants("ann", c.ev), "%v", c.ev.entities)
	}

	// Events move entities: far comes near, ann walks away from near.
	ix.update([]*fsm.Event{
		{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "far", Field: "x", Value: fsm.Int(10)}, {Entity: "far", Field: "y", Value: fsm.Int(10)}}},
		{Status: fsm.StatusRejected, Changes: []fsm.Change{{Entity: "near", Field: "x", Value: fsm.Int(0)}}},
		{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "mate", Field: "team", Value: fsm.String("blue")}}},
		{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "enemy", Field: "hp", Value: fsm.Int(3)}, {Entity: "new", Field: "x", Value: fsm.Int(5000)}}},
	})
	require.True(t, ix.wants("ann", touch("bob", "far")))
	require.False(t, ix.wants("ann", touch("bob", "mate")), "it changed teams")
	require.True(t, ix.wants("ann", touch("bob", "new")), "x without y: no position yet, global")
	ix.update([]*fsm.Event{{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "new", Field: "y", Value: fsm.Int(5000)},
		{Entity: "ann", Field: "x", Value: fsm.Int(800)}, {Entity: "ann", Field: "y", Value: fsm.Int(800)}}}})
	require.False(t, ix.wants("ann", touch("bob", "new")))
	require.False(t, ix.wants("ann", touch("bob", "near")), "ann moved away")
	ix.update([]*fsm.Event{{Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "ann", Op: fsm.OpDelete}}}})
	require.False(t, ix.wants("ann", touch("bob", "mate")), "a deleted entity has no team")
	require.True(t, ix.wants("ann", touch("bob", "ann")))

	// Teams only: an entity of another team is filtered, one without a team is global.
	teams := newInterestIndex(InterestConfig{Team: "team"}, state.lookup)
	require.True(t, teams.wants("ann", touch("bob", "mate")))
	require.False(t, teams.wants("ann", touch("bob", "enemy")))
	require.True(t, teams.wants("ann", touch("bob", "far")))
	ix2 := newInterestIndex(InterestConfig{Team: "team"}, func(string) (fsm.EntityView, error) { return fsm.EntityView{}, errors.New("down") })
	require.True(t, ix2.wants("ann", touch("bob", "x")), "unknown: global")
}

// BenchmarkHubFanout measures one critical event and one coalesced bulk
// change offered to, and encoded for, each of 10,000 connections (the
// hub's work per event without the sockets): ns/op is per connection.
func BenchmarkHubFanout(b *testing.B) {
	const conns = 10000
	obs := make([]*outbox, conns)
	for i := range obs {
		obs[i] = newOutbox(256, codecJSON)
	}
	s := bareServer(nil)
	b.ResetTimer()
	for i := 0; i < b.N; i += conns {
		seq := uint64(i/conns)*2 + 1
		evs, err := s.prepare([]*fsm.Event{
			{World: "w", Seq: seq, Status: fsm.StatusApplied, Player: "p1", Changes: []fsm.Change{{Entity: "p2", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(3), Version: seq}}},
			{World: "w", Seq: seq + 1, Status: fsm.StatusApplied, Player: "p1", Priority: fsm.PriorityBulk, Changes: []fsm.Change{{Entity: "p1", Field: "x", Op: fsm.OpSet, Value: fsm.Int(7), Version: seq + 1}}},
		}, true)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range obs {
			o.offer(evs, nil)
			o.onTick(seq)
			if fr, err := o.take(); err != nil || len(fr) != 2 {
				b.Fatal("want an events frame and a delta")
			}
		}
	}
}

func TestHubRefusesUnknownWorldsAndFailedSubscriptions(t *testing.T) {
	fake := apitest.NewFake()
	fake.WorldMap["arena"] = &apitest.FakeWorld{}
	fake.SubErr = errors.New("feed down")
	e := newEnv(t, fake)
	_, err := e.srv.joinHub(&playConn{world: "nope"})
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, err = e.srv.joinHub(&playConn{world: "arena"})
	require.ErrorContains(t, err, "feed down")
	require.Zero(t, e.srv.hubCount())

	// A failed hub refuses to attach its members and is replaced by the
	// next join.
	h := &hub{err: errors.New("gap"), members: map[*playConn]member{}}
	_, err = h.attach(&playConn{ob: newOutbox(1, codecJSON)})
	require.ErrorContains(t, err, "gap")
	require.True(t, h.failed())
}

func TestPusherEndsItsConnectionWhenTheWorldsHubCannotStart(t *testing.T) {
	fake := apitest.NewFake()
	fake.WorldMap["arena"] = &apitest.FakeWorld{}
	fake.SubErr = errors.New("feed down")
	e := newEnv(t, fake)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &playConn{s: e.srv.Service, world: "arena", ctx: ctx, cancel: cancel}
	c.wg.Add(1)
	c.pusher(nil) // returns at once: the hub's own subscription fails
	c.wg.Wait()
	require.ErrorContains(t, c.err, "feed down", "the connection ends with the hub's error")
	require.ErrorIs(t, ctx.Err(), context.Canceled)
	require.Zero(t, e.srv.hubCount(), "no hub is left behind")
}
