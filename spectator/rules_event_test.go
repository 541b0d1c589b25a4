package spectator

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// updateRules applies a rules update as log 12 writes it (the world's
// event) and returns that event.
func (g *game) updateRules(r fsm.Rules) *fsm.Event {
	g.t.Helper()
	res := g.apply(fsm.Command{Kind: fsm.CmdUpdateRulesEvent, Rules: &fsm.RulesUpdate{World: g.world, Rules: r}})
	require.NoError(g.t, res.Err)
	require.NotNil(g.t, res.Event)
	g.events = append(g.events, res.Event)
	return res.Event
}

// hidingGame is a world whose field "mine" everyone sees, then a rules
// update that hides it (the event at seq 2), then an event writing it.
func hidingGame(t *testing.T) (old *Access, g *game) {
	old = access(t, map[string]string{"pos": "", "mine": ""}, nil, fsm.TeamRule{})
	g = newGame(t, "w", strFields("pos", "mine"))
	g.act("ann", set("ann", "pos", fsm.String("a")), set("ann", "mine", fsm.String("before")))
	r := fsm.Rules{Fields: strFields("pos", "mine"), Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"mine": {Visible: "hidden"}}}}
	ev := g.updateRules(r)
	require.Equal(t, uint64(2), ev.Seq)
	g.act("ann", set("ann", "pos", fsm.String("b")), set("ann", "mine", fsm.String("after")))
	return old, g
}

func TestRulesUpdateNamesItsRulesVersion(t *testing.T) {
	_, g := hidingGame(t)
	v, ok := RulesUpdate(g.events[1])
	require.True(t, ok)
	require.Equal(t, uint64(2), v)
	_, ok = RulesUpdate(g.events[0])
	require.False(t, ok)
	_, ok = RulesUpdate(&fsm.Event{Notice: &fsm.Notice{Kind: fsm.NoticeCheckpointMismatch}})
	require.False(t, ok)
}

// TestEventsPrepareNothingAfterARulesUpdate: prepared events under the
// old rules end at the update's event; the events up to it stay held.
// Events under the new rules, or under rules of no known version, pass
// it.
func TestEventsPrepareNothingAfterARulesUpdate(t *testing.T) {
	_, g := hidingGame(t)
	vis := func(mine string) fsm.Rules {
		return fsm.Rules{Fields: strFields("pos", "mine"), Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"mine": {Visible: mine}}}}
	}
	for _, tc := range []struct {
		rules   fsm.Rules
		version uint64
		ends    bool
	}{{fsm.Rules{Fields: strFields("pos", "mine")}, 1, true}, {vis("team"), 1, true}, {vis("hidden"), 2, false}, {vis("team"), 0, false}} {
		a, err := NewAccessAt(tc.rules, tc.version)
		require.NoError(t, err)
		require.Equal(t, tc.version, a.Version())
		e := NewEvents(a, NewState("w"), nil, newFeed().subscribe, 8)
		p1, err := e.Prepare(g.events[0])
		require.NoError(t, err)
		pr, err := e.Prepare(g.events[1])
		require.NoError(t, err)
		out := e.Event(pr, resolve(t, a, Viewer{}))
		require.NotNil(t, out, "a rules update's event shows to every view")
		require.Equal(t, g.events[1].Notice, out.Notice)
		p3, err := e.Prepare(g.events[2])
		if !tc.ends {
			require.NoError(t, err)
			require.Len(t, e.Event(p3, resolve(t, a, Viewer{})).Changes, 1, "these rules hide mine")
			continue
		}
		require.ErrorIs(t, err, ErrRulesChanged)
		_, err = e.Prepare(g.events[2])
		require.ErrorIs(t, err, ErrRulesChanged, "and every event after")
		again, err := e.Prepare(g.events[0])
		require.NoError(t, err, "the events up to the update are still held")
		require.Same(t, p1, again)
	}
}

// TestPipelineStopsAtARulesUpdateAfterItsFrames: a pipeline sends the
// tick's frames up to a rules update's event, under its rules, then
// stops with ErrRulesChanged: nothing after the update is cut under the
// rules that let its viewers see the field the update hides.
func TestPipelineStopsAtARulesUpdateAfterItsFrames(t *testing.T) {
	_, g := hidingGame(t)
	old, err := NewAccessAt(fsm.Rules{Fields: strFields("pos", "mine")}, 1)
	require.NoError(t, err)
	now := time.Unix(0, t0)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe = "w", old, newFeed().subscribe
	cfg.Now = func() time.Time { return now }
	p, err := newPipeline(cfg)
	require.NoError(t, err)
	view := resolve(t, old, Viewer{})
	evs, err := p.JoinEvents(view)
	require.NoError(t, err)
	deltas, err := p.Join(view)
	require.NoError(t, err)
	require.Equal(t, uint64(0), decodeKeyframe(t, <-evs.ch).Seq)
	require.Equal(t, uint64(0), decodeKeyframe(t, <-deltas.ch).Seq)

	p.delay.Push(g.events...)
	err = p.step(now)
	require.ErrorIs(t, err, ErrRulesChanged)
	p.stop(err)
	require.ErrorIs(t, p.Err(), ErrRulesChanged)
	require.Equal(t, uint64(2), p.Seq(), "the update's event is the last applied")

	f := <-evs.ch
	var e wire.Events
	require.NoError(t, json.Unmarshal(f.Data, &e))
	require.Equal(t, uint64(2), e.Seq)
	require.Len(t, e.Events, 2)
	require.Equal(t, &wire.Notice{Kind: fsm.NoticeRules, RulesVersion: 2}, e.Events[1].Notice)
	d := <-deltas.ch
	require.Equal(t, uint64(2), decodeDelta(t, d).Seq)
	for _, f := range []*Frame{f, d} {
		require.Contains(t, string(f.Data), "before", "seq 1 under the old rules")
		require.NotContains(t, string(f.Data), "after")
	}
	_, ok := <-evs.ch
	require.False(t, ok, "the pipeline's viewers end")
	_, ok = <-deltas.ch
	require.False(t, ok)
}

// TestHubStartsAPipelineUnderTheNewRulesAfterAnUpdate: the watchers of a
// pipeline that stopped at a rules update join again, in a pipeline of
// the new rules, which passes the update's event (its own rules) and
// hides the field from the start.
func TestHubStartsAPipelineUnderTheNewRulesAfterAnUpdate(t *testing.T) {
	g := newGame(t, "w", strFields("pos", "mine"))
	fd := newFeed()
	fd.push(g.act("ann", set("ann", "pos", fsm.String("a")), set("ann", "mine", fsm.String("before"))))
	cfg := HubConfig{Subscribe: fd.subscribe, RulesAt: func(string) (fsm.Rules, uint64, error) {
		w, err := g.f.World("w")
		return w.Rules, w.RulesVersion, err
	}, Pipeline: DefaultConfig()}
	cfg.Pipeline.Tick = time.Millisecond
	h, err := NewHub(cfg)
	require.NoError(t, err)
	defer h.Close()
	w, err := h.JoinEvents("w", Viewer{})
	require.NoError(t, err)
	defer w.Close()
	var all []byte
	for !strings.Contains(string(all), "before") {
		all = append(all, (<-w.Frames()).Data...)
	}

	hide := fsm.Rules{Fields: strFields("pos", "mine"), Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"mine": {Visible: "hidden"}}}}
	fd.push(g.updateRules(hide), g.act("ann", set("ann", "pos", fsm.String("b")), set("ann", "mine", fsm.String("after"))))
	for f := range w.Frames() {
		all = append(all, f.Data...)
	}
	require.NotContains(t, string(all), "after", "the pipeline ends at the update")
	require.Contains(t, string(all), "before")
	require.Contains(t, string(all), `"kind":"rules"`)
	require.ErrorIs(t, w.Err(), ErrRulesChanged)

	w2, err := h.JoinEvents("w", Viewer{})
	require.NoError(t, err)
	defer w2.Close()
	f := <-w2.Frames()
	for seq := decodeKeyframe(t, f).Seq; seq < 3; seq = f.Seq {
		require.NotContains(t, string(f.Data), "after")
		require.NotContains(t, string(f.Data), "before")
		f = <-w2.Frames()
	}
	require.NotContains(t, string(f.Data), "after")
	require.NoError(t, w2.Err(), "the new pipeline passes its own rules' update")
}

// TestHubRefusesAPipelineWhoseSeedIsPastARulesUpdate: the seed is read
// after the rules; an update between the two would leave the pipeline
// past the update's event under the old rules, so the join is refused
// (ErrRulesChanged: join again) and nothing is left running.
func TestHubRefusesAPipelineWhoseSeedIsPastARulesUpdate(t *testing.T) {
	g := newGame(t, "w", strFields("pos", "mine"))
	fd := newFeed()
	fd.push(g.act("ann", set("ann", "mine", fsm.String("before"))))
	version := uint64(0)
	cfg := HubConfig{Subscribe: fd.subscribe,
		RulesAt: func(string) (fsm.Rules, uint64, error) {
			version++ // an update lands between the rules' read and the seed's
			return fsm.Rules{Fields: strFields("pos", "mine")}, version, nil
		},
		Seed:     func(string) (*State, error) { return SeedState("w", 1, t0, nil), nil },
		Pipeline: DefaultConfig()}
	h, err := NewHub(cfg)
	require.NoError(t, err)
	defer h.Close()
	_, err = h.Join("w", Viewer{})
	require.ErrorIs(t, err, ErrRulesChanged)
	require.Zero(t, h.Pipelines())
}
