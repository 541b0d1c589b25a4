package spectator

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestQuantiseRoundsHalfAwayFromZeroToTheNearestMultiple(t *testing.T) {
	for _, c := range []struct{ v, q, want float64 }{
		{0.25, 0.1, 0.3}, {-0.25, 0.1, -0.3}, {0.24, 0.1, 0.2}, {1.06, 0.1, 1.1},
		{0.3, 0.1, 0.3}, {0.7, 0.1, 0.7}, {123.456, 0.01, 123.46},
		{12.5, 5, 15}, {-12.5, 5, -15}, {12.4, 5, 10}, {1.125, 0.25, 1.25}, {-1.125, 0.25, -1.25},
		{7, 2, 8}, {1e300, 0.1, 1e300}, // v·k overflows: v as it is
	} {
		require.Equal(t, c.want, Quantise(c.v, c.q), "%v to %v", c.v, c.q)
	}
	for _, v := range []float64{0.04, -0.04, math.Copysign(0, -1), -0.0499} {
		got := Quantise(v, 0.1)
		require.Zero(t, got)
		require.False(t, math.Signbit(got), "no -0 for %v", v)
	}
	require.InDelta(t, 6.9, Quantise(7, 0.3), 1e-12, "a quantum that is no 1/k multiplies")
	require.True(t, math.IsNaN(Quantise(math.NaN(), 1)))
	require.True(t, math.IsInf(Quantise(math.Inf(-1), 1), -1))
}

// quantRules are a moving entity's fields: x rounded to q for spectators,
// y and name whole.
func quantRules(q float64) fsm.Rules {
	float := fsm.FieldRule{Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}
	return fsm.Rules{Fields: map[string]fsm.FieldRule{"x": float, "y": float, "name": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: q}}}}
}

func newQuantAccess(t testingT, q float64) *Access {
	t.Helper()
	a, err := NewAccess(quantRules(q))
	require.NoError(t, err)
	return a
}

func TestQuantisedFieldsAreRoundedAndAMoveWithinTheQuantumIsNotSent(t *testing.T) {
	a := newQuantAccess(t, 0.1)
	g := newGame(t, "w", quantRules(0.1).Fields)
	s := NewState("w")
	s.quantise(a.quanta)
	tk := NewTicker(a, s, nil)
	x := func(v float64) *fsm.Value { return ptr(fsm.Float(v)) }

	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.Float(1.02)), set("ann", "y", fsm.Float(0.123)))))
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Version: 1, Fields: map[string]wire.WatchField{
		"x": {Value: x(1), Version: 1}, "y": {Value: x(0.123), Version: 1},
	}}}, tk.Delta(View{}).Entities, "rounded to 0.1; y has no quantum")
	tk.Reset()

	// Moves within the quantum cost nothing: no delta at all.
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.Float(1.04)))))
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.Float(0.96)))))
	require.Nil(t, tk.Delta(View{}))
	tk.Reset()

	// A move past half the quantum is sent, rounded, with its version.
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.Float(1.06)))))
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Version: 4, Fields: map[string]wire.WatchField{
		"x": {Value: x(1.1), Version: 4},
	}}}, tk.Delta(View{}).Entities)
	tk.Reset()

	// A tick that moves x within the quantum and changes name sends name
	// only; the entity's version is the shown one.
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.Float(1.12)), set("ann", "name", fsm.String("Ann")))))
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Version: 5, Fields: map[string]wire.WatchField{
		"name": {Value: ptr(fsm.String("Ann")), Version: 5},
	}}}, tk.Delta(View{}).Entities)
	require.NoError(t, tk.Apply(g.act("ann", set("ann", "x", fsm.Float(1.13)))))
	tk.Reset()

	// A keyframe shows x as the deltas left it: 1.1 at version 4, not
	// the state's 1.13 at version 6.
	k := Keyframe(a, s, nil, View{})
	require.Equal(t, wire.WatchEntity{Version: 5, Fields: map[string]wire.WatchField{
		"x": {Value: x(1.1), Version: 4}, "y": {Value: x(0.123), Version: 1}, "name": {Value: ptr(fsm.String("Ann")), Version: 5},
	}}, k.Entities["ann"])
	// The full-precision forms: events' keyframes, and a state that is no
	// spectator's (a player's keyframe is made of a seed like this one).
	whole := keyframe(a, s, nil, View{}, true)
	require.Equal(t, wire.WatchField{Value: x(1.13), Version: 6}, whole.Entities["ann"].Fields["x"])
	ents, seq, err := g.f.Entities("w")
	require.NoError(t, err)
	player := Keyframe(a, SeedState("w", seq, g.time, ents), nil, View{})
	require.Equal(t, wire.WatchField{Value: x(1.13), Version: 6}, player.Entities["ann"].Fields["x"])
	// The state itself keeps full precision (its entity hash is the FSM's).
	h, err := s.EntityHash(quantRules(0.1))
	require.NoError(t, err)
	fh, _, err := g.f.EntityHash("w")
	require.NoError(t, err)
	require.Equal(t, fh, h)

	// An entity deleted and made again is replaced whole, rounded.
	require.NoError(t, tk.Apply(g.act("ann", del("ann"), set("ann", "x", fsm.Float(-0.04)))))
	require.Equal(t, map[string]wire.WatchEntity{"ann": {Replace: true, Version: 7, Fields: map[string]wire.WatchField{
		"x": {Value: x(0), Version: 7},
	}}}, tk.Delta(View{}).Entities)
}

func TestAPipelineRoundsDeltasAndKeyframesButNotEvents(t *testing.T) {
	a := newQuantAccess(t, 0.5)
	g := newGame(t, "w", quantRules(0.5).Fields)
	cfg := DefaultConfig()
	now := time.Unix(0, t0)
	cfg.World, cfg.Access, cfg.Subscribe, cfg.Now = "w", a, newFeed().subscribe, func() time.Time { return now }
	evs := []*fsm.Event{g.act("ann", set("ann", "x", fsm.Float(10.3)))}
	seed := NewState("w")
	require.NoError(t, seed.Apply(evs[0]))
	cfg.Seed = seed
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	deltas, err := p.Join(View{})
	require.NoError(t, err)
	events, err := p.JoinEvents(View{})
	require.NoError(t, err)
	require.Equal(t, wire.WatchField{Value: ptr(fsm.Float(10.5)), Version: 1}, decodeKeyframe(t, <-deltas.ch).Entities["ann"].Fields["x"])
	require.Equal(t, wire.WatchField{Value: ptr(fsm.Float(10.3)), Version: 1}, decodeKeyframe(t, <-events.ch).Entities["ann"].Fields["x"],
		"events are whole: so is their keyframe")

	step := func(evs ...*fsm.Event) {
		now = now.Add(time.Hour)
		p.delay.Push(evs...)
		require.NoError(t, p.step(now))
	}
	step(g.act("ann", set("ann", "x", fsm.Float(10.6))))
	require.Empty(t, deltas.ch, "10.6 rounds to 10.5: nothing sent")
	require.Len(t, events.ch, 1, "the event is sent whole")
	step(g.act("ann", set("ann", "x", fsm.Float(11.3))))
	d := decodeDelta(t, <-deltas.ch)
	require.Equal(t, wire.WatchField{Value: ptr(fsm.Float(11.5)), Version: 3}, d.Entities["ann"].Fields["x"])
	<-events.ch
	var got wire.Events
	f := <-events.ch
	require.NoError(t, json.Unmarshal(f.Data, &got))
	require.Equal(t, fsm.Float(11.3), *got.Events[0].Changes[0].Value)
}

func TestNewAccessRefusesABadQuantum(t *testing.T) {
	for _, q := range []float64{-1, math.NaN(), math.Inf(1)} {
		r := quantRules(q)
		_, err := NewAccess(r)
		require.ErrorIs(t, err, ErrBadRules, "%v", q)
	}
}

func TestViewRulesCarryTheQuantaOfTheFieldsTheViewerMaySee(t *testing.T) {
	r := quantRules(0.1)
	r.Fields["z"] = fsm.FieldRule{Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}
	r.Fields["hz"] = r.Fields["z"]
	r.Schema.Access["z"] = fsm.FieldAccess{Visible: "team", Quantum: 2}
	r.Schema.Access["hz"] = fsm.FieldAccess{Visible: "hidden", Quantum: 3}
	r.Fields["o"] = r.Fields["z"]
	r.Schema.Access["o"] = fsm.FieldAccess{Visible: "owner", Quantum: 4}
	r.Schema.Viewers = map[string]fsm.ViewerRule{"caster": {Sees: []string{"hidden"}}}
	for _, c := range []struct {
		v    Viewer
		want []string
	}{
		{Viewer{}, []string{"x"}}, {Viewer{Team: "red"}, []string{"x", "z"}}, {Viewer{Player: "ann"}, []string{"o", "x", "z"}},
		{Viewer{Class: "caster"}, []string{"hz", "x"}},
	} {
		vr, err := ViewRules(r, c.v)
		require.NoError(t, err)
		require.ElementsMatch(t, c.want, sortedKeys(vr.Schema.Access), "%+v", c.v)
		for _, n := range c.want {
			require.Equal(t, fsm.FieldAccess{Quantum: r.Schema.Access[n].Quantum}, vr.Schema.Access[n], "only the quantum: the relay restricts nothing")
			require.Equal(t, r.Fields[n], vr.Fields[n])
		}
		require.NoError(t, vr.Validate(), "a relay reads them back")
	}
}

// TestQuantisedStreamIsKeyframePlusDeltasOfTheQuantisedState: random
// moves of a few entities (small ones, within the quantum, and jumps),
// deletes, random tick boundaries and a viewer joining at a random tick:
// what the viewer holds after its keyframe and the deltas since is the
// keyframe at the end, and that is the world's state with x rounded.
func TestQuantisedStreamIsKeyframePlusDeltasOfTheQuantisedState(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		q := rapid.SampledFrom([]float64{0.1, 0.25, 1, 5, 0.3}).Draw(rt, "quantum")
		a := newQuantAccess(rt, q)
		g := newGame(rt, "w", quantRules(q).Fields)
		s := NewState("w")
		s.quantise(a.quanta)
		tk := NewTicker(a, s, nil)
		var c *client
		pos := map[string]float64{}
		tick := func() {
			if c != nil {
				if d := tk.tickDelta(View{}, true); d != nil {
					f, err := d.frame()
					require.NoError(rt, err)
					c.delta(decodeDelta(rt, f))
				}
			}
			tk.Reset()
			if c == nil && rapid.Bool().Draw(rt, "join") {
				f, err := encode(wire.TypeKeyframe, s.Seq(), Keyframe(a, s, nil, View{}))
				require.NoError(rt, err)
				c = &client{}
				c.keyframe(decodeKeyframe(rt, f))
			}
		}
		tick()
		for range rapid.IntRange(1, 60).Draw(rt, "events") {
			id := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, "entity")
			var op fsm.Op
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0:
				op = del(id)
				delete(pos, id)
			case 1:
				op = set(id, "name", fsm.String(rapid.SampledFrom([]string{"p", "q"}).Draw(rt, "name")))
			case 2:
				op = set(id, "y", fsm.Float(rapid.Float64Range(-10, 10).Draw(rt, "y")))
			case 3:
				pos[id] = rapid.Float64Range(-100, 100).Draw(rt, "jump")
				op = set(id, "x", fsm.Float(pos[id]))
			default:
				pos[id] += rapid.Float64Range(-q, q).Draw(rt, "move")
				op = set(id, "x", fsm.Float(pos[id]))
			}
			require.NoError(rt, tk.Apply(g.act("p", op)))
			if rapid.Bool().Draw(rt, "tick ends") {
				tick()
			}
		}
		tick()
		if c == nil {
			return
		}
		end := Keyframe(a, s, nil, View{})
		f, err := encode(wire.TypeKeyframe, s.Seq(), end)
		require.NoError(rt, err)
		requireSameEntities(rt, decodeKeyframe(rt, f).Entities, c.ents) // both through JSON: 1.0 reads as an int

		whole := keyframe(a, s, nil, View{}, true)
		require.Len(rt, end.Entities, len(whole.Entities))
		for id, we := range whole.Entities {
			for n, f := range we.Fields {
				got := end.Entities[id].Fields[n]
				if n == "x" {
					require.Equal(rt, Quantise(f.Value.Float, q), got.Value.Float, "%s.x", id)
					require.LessOrEqual(rt, got.Version, f.Version)
				} else {
					require.Equal(rt, f, got, "%s.%s", id, n)
				}
			}
		}
	})
}

// A replay served to spectators rounds as a live pipeline does: its
// keyframe at a seq and its deltas show x rounded, a move within the
// quantum not at all.
func TestAReplayRoundsAQuantisedField(t *testing.T) {
	a := newQuantAccess(t, 0.5)
	g := newGame(t, "w", quantRules(0.5).Fields)
	fd := newFeed()
	fd.push(g.act("ann", set("ann", "x", fsm.Float(10.3))))
	fd.push(g.act("ann", set("ann", "x", fsm.Float(10.6))))
	fd.push(g.act("ann", set("ann", "x", fsm.Float(11.3))))
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe}, View{})
	require.NoError(t, err)
	f, err := r.SeekSeq(context.Background(), 2)
	require.NoError(t, err)
	require.Equal(t, wire.WatchField{Value: ptr(fsm.Float(10.5)), Version: 1}, decodeKeyframe(t, f).Entities["ann"].Fields["x"])
	f, err = r.Advance(context.Background(), time.Unix(0, g.time))
	require.NoError(t, err)
	require.Equal(t, wire.WatchField{Value: ptr(fsm.Float(11.5)), Version: 3}, decodeDelta(t, f).Entities["ann"].Fields["x"])
}

// A quantised field's value that is not a float (rules changed under a
// relay's feed, say) shows as it is; its next float is rounded afresh.
func TestAQuantisedFieldsValueThatIsNoFloatShowsAsItIs(t *testing.T) {
	a := newQuantAccess(t, 0.5)
	s := NewState("w")
	s.quantise(a.quanta)
	tk := NewTicker(a, s, nil)
	step := func(seq uint64, v fsm.Value) map[string]wire.WatchField {
		tk.Reset()
		require.NoError(t, tk.Apply(&fsm.Event{World: "w", Seq: seq, Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: "e", Field: "x", Op: fsm.OpSet, Value: v, Version: seq}}}))
		return tk.Delta(View{}).Entities["e"].Fields
	}
	require.Equal(t, map[string]wire.WatchField{"x": {Value: ptr(fsm.Float(1)), Version: 1}}, step(1, fsm.Float(1.02)))
	require.Equal(t, map[string]wire.WatchField{"x": {Value: ptr(fsm.Int(5)), Version: 2}}, step(2, fsm.Int(5)))
	require.Equal(t, map[string]wire.WatchField{"x": {Value: ptr(fsm.Float(5)), Version: 3}}, step(3, fsm.Float(5.04)))
	require.Equal(t, wire.WatchField{Value: ptr(fsm.Float(5)), Version: 3}, Keyframe(a, s, nil, View{}).Entities["e"].Fields["x"])
}
