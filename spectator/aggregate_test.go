package spectator

import (
	"encoding/json"
	"maps"
	"math"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func scoreRules(views map[string]fsm.ViewRule, vis map[string]fsm.FieldAccess) fsm.Rules {
	return fsm.Rules{Fields: map[string]fsm.FieldRule{
		"kills": {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"cash":  {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative},
		"side":  {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"tags":  {Type: fsm.KindString, Policy: fsm.PolicySet},
	}, Schema: fsm.Schema{Views: views, Access: vis, Teams: fsm.TeamRule{From: "field", Key: "side"},
		Viewers: map[string]fsm.ViewerRule{"caster": {Sees: []string{"hidden"}}}}}
}

func aggValues(t *testing.T, fs []*aggFrame) map[string]map[string]wire.Value {
	out := map[string]map[string]wire.Value{}
	for _, f := range fs {
		var v wire.ViewFrame
		require.NoError(t, json.Unmarshal(f.frame.Data, &v))
		require.Equal(t, wire.TypeView, v.Type)
		out[v.Name] = v.Groups
	}
	return out
}

func TestAggregatesKeepScoreboardsIncrementally(t *testing.T) {
	r := scoreRules(map[string]fsm.ViewRule{
		"kills_by_team":   {Kind: "sum", Field: "kills", By: "team"},
		"players_by_team": {Kind: "count", Field: "kills", By: "team"},
		"best":            {Kind: "max", Field: "kills"},
		"worst":           {Kind: "min", Field: "kills", By: "player"},
		"cash":            {Kind: "sum", Field: "cash"},
		"bags":            {Kind: "count", Field: "tags"},
	}, nil)
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	require.Equal(t, 6, ag.Len())
	g := newGame(t, "w", r.Fields)
	tk := NewTicker(a, NewState("w"), nil)
	tick := func(evs ...*fsm.Event) map[string]map[string]wire.Value {
		for _, ev := range evs {
			require.NoError(t, tk.Apply(ev))
		}
		ag.update(tk.State(), nil, tk.touchedIDs)
		tk.Reset()
		fs, err := ag.frames("w", tk.State().Seq())
		require.NoError(t, err)
		return aggValues(t, fs)
	}
	got := tick(
		g.act("ann", set("ann", "side", fsm.String("red")), incr("ann", "kills", 3)),
		g.act("bob", set("bob", "side", fsm.String("red")), incr("bob", "kills", 1)),
		g.act("cat", set("cat", "side", fsm.String("blue")), incr("cat", "kills", 5), set("cat", "cash", fsm.Float(2.5))),
	)
	require.Equal(t, map[string]map[string]wire.Value{
		"kills_by_team":   {"red": fsm.Int(4), "blue": fsm.Int(5)},
		"players_by_team": {"red": fsm.Int(2), "blue": fsm.Int(1)},
		"best":            {"": fsm.Int(5)},
		"worst":           {"ann": fsm.Int(3), "bob": fsm.Int(1), "cat": fsm.Int(5)},
		"cash":            {"": fsm.Float(2.5)},
	}, got)

	// bob changes team and cat leaves: only the views that changed come.
	got = tick(g.act("bob", set("bob", "side", fsm.String("blue"))), g.act("cat", del("cat")))
	require.Equal(t, map[string]map[string]wire.Value{
		"kills_by_team":   {"red": fsm.Int(3), "blue": fsm.Int(1)},
		"players_by_team": {"red": fsm.Int(1), "blue": fsm.Int(1)},
		"best":            {"": fsm.Int(3)},
		"worst":           {"ann": fsm.Int(3), "bob": fsm.Int(1)},
		"cash":            nil, // an empty scoreboard: no groups
	}, got)
	require.Equal(t, map[string]map[string]wire.Value{"bags": {"": fsm.Int(1)}},
		tick(g.act("ann", add("ann", "tags", fsm.String("x")))), "a set field counts; nothing else changed")
	require.Empty(t, tick(g.act("ann", add("ann", "tags", fsm.String("y")))), "nothing aggregated changed")
}

func TestAggregatesSumSaturatesFloatsJSONCannotHold(t *testing.T) {
	r := scoreRules(map[string]fsm.ViewRule{"cash": {Kind: "sum", Field: "cash"}}, nil)
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	s := SeedState("w", 2, 0, []fsm.EntityView{
		{ID: "a", Fields: []fsm.FieldView{{Name: "cash", Value: fsm.Float(math.MaxFloat64)}}},
		{ID: "b", Fields: []fsm.FieldView{{Name: "cash", Value: fsm.Float(math.MaxFloat64)}}},
	})
	ag.update(s, nil, maps.Keys(s.ents))
	fs, err := ag.frames("w", 2)
	require.NoError(t, err)
	require.Equal(t, fsm.Float(math.MaxFloat64), aggValues(t, fs)["cash"][""])
}

func TestAggregatesAreShownOnlyToViewsThatSeeTheirField(t *testing.T) {
	r := scoreRules(map[string]fsm.ViewRule{
		"kills": {Kind: "sum", Field: "kills", By: "team"},
		"cash":  {Kind: "sum", Field: "cash", By: "player"},
	}, map[string]fsm.FieldAccess{"kills": {Visible: "hidden"}, "side": {Visible: "owner"}})
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	public, caster := resolve(t, a, Viewer{}), resolve(t, a, Viewer{Class: "caster"})
	kills, cash := ag.aggs[1], ag.aggs[0]
	require.Equal(t, "kills", kills.name)
	require.False(t, ag.sees(public, kills), "a sum of hidden kills tells what they are")
	require.False(t, ag.sees(caster, kills), "by team: the teams are owner-only")
	require.True(t, ag.sees(public, cash))
	require.True(t, ag.sees(caster, cash))
}

func TestNewAggregatesRefusesWhatItCannotMake(t *testing.T) {
	for name, tc := range map[string]struct {
		view fsm.ViewRule
		err  error
	}{
		"heatmap":  {fsm.ViewRule{Kind: "heatmap", Field: "kills"}, ErrBadRules}, // no grid
		"feed by":  {fsm.ViewRule{Kind: "feed", Field: "kills", By: "team"}, ErrBadRules},
		"kind":     {fsm.ViewRule{Kind: "avg", Field: "kills"}, ErrBadRules},
		"by":       {fsm.ViewRule{Kind: "sum", Field: "kills", By: "guild"}, ErrBadRules},
		"no field": {fsm.ViewRule{Kind: "count"}, ErrBadRules},
	} {
		r := scoreRules(map[string]fsm.ViewRule{"v": tc.view}, nil)
		a, err := NewAccess(r)
		require.NoError(t, err)
		_, err = NewAggregates(a, r)
		require.ErrorIs(t, err, tc.err, name)
	}
	var none *Aggregates
	require.Zero(t, none.Len())
}

func TestPipelineServesAggregatesToJoinersAndEachTick(t *testing.T) {
	r := scoreRules(map[string]fsm.ViewRule{"kills": {Kind: "sum", Field: "kills", By: "team"}}, nil)
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	g := newGame(t, "w", r.Fields)
	g.act("ann", set("ann", "side", fsm.String("red")), incr("ann", "kills", 2))
	e, err := g.f.Entity("w", "ann")
	require.NoError(t, err)
	fd := newFeed()
	fd.push(g.events...)
	now := time.Unix(0, g.time)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe, cfg.Aggregates = "w", a, fd.subscribe, ag
	cfg.Now, cfg.Seed, cfg.Queue = func() time.Time { return now }, SeedState("w", 1, g.time, []fsm.EntityView{e}), 3
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	m, err := p.Join(View{})
	require.NoError(t, err)
	require.Equal(t, wire.TypeKeyframe, (<-m.ch).Type)
	f := <-m.ch
	require.Equal(t, wire.TypeView, f.Type)
	require.JSONEq(t, `{"type":"view","world":"w","name":"kills","kind":"sum","seq":1,"groups":{"red":2}}`, string(f.Data))

	p.delay.Push(g.act("bob", set("bob", "side", fsm.String("red")), incr("bob", "kills", 1)))
	require.NoError(t, p.step(now))
	require.Equal(t, wire.TypeWatchDelta, (<-m.ch).Type)
	require.JSONEq(t, `{"type":"view","world":"w","name":"kills","kind":"sum","seq":2,"groups":{"red":3}}`, string((<-m.ch).Data))

	// A viewer that fell behind gets a keyframe and the aggregates again.
	m.lagging = true
	require.NoError(t, p.step(now))
	require.Equal(t, wire.TypeKeyframe, (<-m.ch).Type)
	require.JSONEq(t, `{"type":"view","world":"w","name":"kills","kind":"sum","seq":2,"groups":{"red":3}}`, string((<-m.ch).Data))

	cfg.Queue = 2
	_, err = newPipeline(cfg)
	require.Error(t, err, "a queue too small for a keyframe, a delta and the aggregates")
}

func TestAggregateFramesKeepTheirContentAfterLaterTicks(t *testing.T) {
	r := scoreRules(map[string]fsm.ViewRule{"kills": {Kind: "sum", Field: "kills"}}, nil)
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	s := SeedState("w", 1, 0, []fsm.EntityView{{ID: "a", Fields: []fsm.FieldView{{Name: "kills", Value: fsm.Int(1)}}}})
	ag.update(s, nil, maps.Keys(s.ents))
	first, err := ag.frames("w", 1)
	require.NoError(t, err)
	require.NoError(t, s.Apply(&fsm.Event{World: "w", Seq: 2, Status: fsm.StatusApplied,
		Changes: []fsm.Change{{Entity: "a", Field: "kills", Op: fsm.OpIncr, Value: fsm.Int(5), Version: 2}}}))
	ag.update(s, nil, maps.Keys(s.ents))
	_, err = ag.frames("w", 2)
	require.NoError(t, err)
	mp, err := first[0].frame.Msgpack()
	require.NoError(t, err)
	js, err := wire.MsgpackToJSON(mp)
	require.NoError(t, err)
	require.JSONEq(t, string(first[0].frame.Data), string(js), "a frame's msgpack is of its own tick")
}

func TestHeatmapCountsEntitiesPerGridCell(t *testing.T) {
	r := fsm.Rules{Fields: map[string]fsm.FieldRule{
		"x":     {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative},
		"y":     {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"alive": {Type: fsm.KindBool, Policy: fsm.PolicyAuthoritative},
		"name":  {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"tags":  {Type: fsm.KindString, Policy: fsm.PolicySet},
	}, Schema: fsm.Schema{
		Interest: fsm.InterestRule{Cell: 10, X: "x", Y: "y"},
		Views:    map[string]fsm.ViewRule{"where": {Kind: "heatmap", Field: "alive"}},
		Access:   map[string]fsm.FieldAccess{"name": {Visible: "hidden"}},
		Viewers:  map[string]fsm.ViewerRule{"caster": {Sees: []string{"hidden"}}},
	}}
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	require.True(t, ag.sees(resolve(t, a, Viewer{}), ag.aggs[0]))
	g := newGame(t, "w", r.Fields)
	tk := NewTicker(a, NewState("w"), nil)
	tick := func(evs ...*fsm.Event) map[string]wire.Value {
		for _, ev := range evs {
			require.NoError(t, tk.Apply(ev))
		}
		ag.update(tk.State(), nil, tk.touchedIDs)
		tk.Reset()
		fs, err := ag.frames("w", tk.State().Seq())
		require.NoError(t, err)
		return aggValues(t, fs)["where"]
	}
	alive := fsm.Bool(true)
	require.Equal(t, map[string]wire.Value{"0,0": fsm.Int(2), "-1,3": fsm.Int(1)}, tick(
		g.act("ann", set("ann", "x", fsm.Float(1)), set("ann", "y", fsm.Int(2)), set("ann", "alive", alive)),
		g.act("bob", set("bob", "x", fsm.Float(9.9)), set("bob", "y", fsm.Int(0)), set("bob", "alive", alive)),
		g.act("cat", set("cat", "x", fsm.Float(-0.5)), set("cat", "y", fsm.Int(35)), set("cat", "alive", alive)),
		g.act("dan", set("dan", "alive", alive)),                                                                 // no position
		g.act("eve", set("eve", "x", fsm.Float(1)), set("eve", "y", fsm.Int(1))),                                 // not alive
		g.act("far", set("far", "x", fsm.Float(1e300)), set("far", "y", fsm.Int(1)), set("far", "alive", alive)), // off the grid
	))
	require.Equal(t, map[string]wire.Value{"0,0": fsm.Int(1), "1,0": fsm.Int(1), "-1,3": fsm.Int(1)},
		tick(g.act("bob", set("bob", "x", fsm.Float(10)))), "bob moved a cell east")

	r.Schema.Access = map[string]fsm.FieldAccess{"x": {Visible: "hidden"}}
	a, err = NewAccess(r)
	require.NoError(t, err)
	ag, err = NewAggregates(a, r)
	require.NoError(t, err)
	require.False(t, ag.sees(resolve(t, a, Viewer{}), ag.aggs[0]), "a heatmap tells hidden positions")
	require.True(t, ag.sees(resolve(t, a, Viewer{Class: "caster"}), ag.aggs[0]))

	for name, v := range map[string]fsm.ViewRule{
		"by team": {Kind: "heatmap", Field: "alive", By: "team"},
	} {
		r.Schema.Views = map[string]fsm.ViewRule{"v": v}
		_, err := NewAggregates(a, r)
		require.ErrorIs(t, err, ErrBadRules, name)
	}
}

func TestHeatmapIgnoresPositionsThatAreNotNumbers(t *testing.T) {
	grid := fsm.InterestRule{Cell: 1, X: "x", Y: "y"}
	for name, fields := range map[string]map[string]*fieldState{
		"no y":       {"x": {value: fsm.Int(1)}},
		"a set":      {"x": {isSet: true}, "y": {value: fsm.Int(1)}},
		"a string":   {"x": {value: fsm.String("1")}, "y": {value: fsm.Int(1)}},
		"very small": {"x": {value: fsm.Float(-1e300)}, "y": {value: fsm.Int(1)}},
	} {
		_, ok := cell(newEntState(fields), grid)
		require.False(t, ok, name)
	}
}

func TestFeedKeepsTheLatestChangesOfItsField(t *testing.T) {
	r := scoreRules(map[string]fsm.ViewRule{"kills": {Kind: "feed", Field: "kills"}}, nil)
	a, err := NewAccess(r)
	require.NoError(t, err)
	ag, err := NewAggregates(a, r)
	require.NoError(t, err)
	g := newGame(t, "w", r.Fields)
	fd := newFeed()
	now := time.Unix(0, t0)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe, cfg.Aggregates = "w", a, fd.subscribe, ag
	cfg.Now = func() time.Time { return now }
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	m, err := p.Join(View{})
	require.NoError(t, err)
	require.Equal(t, wire.TypeKeyframe, (<-m.ch).Type)
	p.delay.Push(g.act("ann", incr("ann", "kills", 1), set("ann", "side", fsm.String("red"))),
		g.act("bob", incr("bob", "kills", 1)), g.act("ann", incr("ann", "kills", 1)))
	require.NoError(t, p.step(now))
	require.Equal(t, wire.TypeWatchDelta, (<-m.ch).Type)
	require.JSONEq(t, `{"type":"view","world":"w","name":"kills","kind":"feed","seq":3,"feed":[
		{"seq":1,"player":"ann","entity":"ann","value":1},
		{"seq":2,"player":"bob","entity":"bob","value":1},
		{"seq":3,"player":"ann","entity":"ann","value":2}]}`, string((<-m.ch).Data), "every change, none coalesced")

	p.delay.Push(g.act("bob", set("bob", "side", fsm.String("blue"))))
	require.NoError(t, p.step(now))
	require.Equal(t, wire.TypeWatchDelta, (<-m.ch).Type)
	require.Empty(t, m.ch, "the feed did not change")
	for range FeedLen {
		p.delay.Push(g.act("cat", incr("cat", "kills", 1)))
	}
	p.delay.Push(&fsm.Event{World: "w", Seq: uint64(len(g.events) + 1), Status: fsm.StatusRejected, Player: "dan"})
	require.NoError(t, p.step(now))
	<-m.ch
	var v wire.ViewFrame
	require.NoError(t, json.Unmarshal((<-m.ch).Data, &v))
	require.Len(t, v.Feed, FeedLen, "the latest only")
	require.Equal(t, "cat", v.Feed[0].Entity)
	p.Leave(m)
}

// Pipeline.Views serves the views at the seq the pipeline's state is at:
// a pipeline without aggregates has none, and a stopped one says why.
func TestPipelineViewsAtItsSeqAndAfterItStopped(t *testing.T) {
	r := scoreRules(map[string]fsm.ViewRule{"kills": {Kind: "sum", Field: "kills", By: "team"}}, nil)
	a, err := NewAccess(r)
	require.NoError(t, err)
	g := newGame(t, "w", r.Fields)
	g.act("ann", set("ann", "side", fsm.String("red")), incr("ann", "kills", 2))
	e, err := g.f.Entity("w", "ann")
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe = "w", a, newFeed().subscribe
	cfg.Seed = SeedState("w", 1, g.time, []fsm.EntityView{e})
	p, err := New(cfg)
	require.NoError(t, err)
	seq, views, err := p.Views(View{})
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	require.Empty(t, views, "no aggregates")
	p.Close()
	_, _, err = p.Views(View{})
	require.ErrorIs(t, err, ErrClosed)

	cfg.Aggregates, err = NewAggregates(a, r)
	require.NoError(t, err)
	cfg.Seed = SeedState("w", 1, g.time, []fsm.EntityView{e})
	p, err = New(cfg)
	require.NoError(t, err)
	defer p.Close()
	seq, views, err = p.Views(View{})
	require.NoError(t, err)
	require.Equal(t, []wire.ViewFrame{{Type: wire.TypeView, World: "w", Name: "kills", Kind: "sum", Seq: seq,
		Groups: map[string]wire.Value{"red": fsm.Int(2)}}}, views)
}
