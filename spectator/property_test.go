package spectator

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The property tests play random games under random visibility rules and
// check every byte made for each view: no value of a field the view may
// not see, no field it may not see, no version that only a field it may
// not see had. The reference of what a view may see is written apart from
// Access, over the real FSM's state.

var (
	propEntities = []string{"P0", "P1", "P2", "OB0", "OB1"}
	propPlayers  = []string{"P0", "P1", "P2"}
	propStrings  = []string{"F0", "F1", "F2"}
	propVis      = []string{"", "owner", "team", "hidden", "casters"}
	tokenRE      = regexp.MustCompile(`V[0-9]+x[A-Z0-9]+x[A-Z0-9]+`)
)

// propWorld is a random game's rules and the reference model.
type propWorld struct {
	vis map[string]string // field → visibility ("" all)
	// viewerWho gives a player viewer's team at the time of what is
	// checked (nil: the FSM's now).
	viewerWho func(string) refWho
	fields    map[string]fsm.FieldRule
	a         *Access
	g         *game
	versions  map[string]map[string][]uint64 // entity → field → versions it held
}

func newPropWorld(t *rapid.T) *propWorld {
	fields := map[string]fsm.FieldRule{
		"C0":    {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"S0":    {Type: fsm.KindString, Policy: fsm.PolicySet},
		"side":  {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"owner": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	}
	for _, f := range propStrings {
		fields[f] = fsm.FieldRule{Type: fsm.KindString, Policy: fsm.PolicyAuthoritative}
	}
	pw := &propWorld{vis: map[string]string{}, fields: fields, versions: map[string]map[string][]uint64{}}
	r := fsm.Rules{Fields: fields, Schema: fsm.Schema{
		Teams:   fsm.TeamRule{From: "field", Key: "side"},
		Viewers: map[string]fsm.ViewerRule{},
	}}
	for _, f := range append(slices.Clone(propStrings), "C0", "S0") {
		v := rapid.SampledFrom(propVis).Draw(t, "vis "+f)
		pw.vis[f] = v
		if v != "" {
			if r.Schema.Access == nil {
				r.Schema.Access = map[string]fsm.FieldAccess{}
			}
			r.Schema.Access[f] = fsm.FieldAccess{Visible: v}
		}
	}
	for i := range rapid.IntRange(0, 2).Draw(t, "classes") {
		sees := rapid.SliceOfDistinct(rapid.SampledFrom(propVis[1:]), rapid.ID[string]).Draw(t, "sees")
		r.Schema.Viewers[fmt.Sprintf("class%d", i)] = fsm.ViewerRule{Sees: sees}
	}
	a, err := NewAccess(r)
	require.NoError(t, err)
	pw.a = a
	pw.g = newGame(t, "w", fields)
	return pw
}

// viewer is one random viewer with the reference's terms.
type propViewer struct {
	Viewer
	sees []string
	view View
}

func (pw *propWorld) viewers(t *rapid.T) []propViewer {
	var out []propViewer
	for _, c := range pw.a.Classes() {
		var sees []string
		if c != "" {
			for _, v := range propVis[1:] {
				if pw.a.classes[c].sees.has(mustVis(v)) {
					sees = append(sees, v)
				}
			}
		}
		out = append(out, propViewer{Viewer: Viewer{Class: c}, sees: sees})
	}
	for _, p := range propPlayers {
		team := rapid.SampledFrom([]string{"", "red", "blue"}).Draw(t, "team of "+p)
		out = append(out, propViewer{Viewer: Viewer{Player: p, Team: team}})
	}
	out = append(out, propViewer{Viewer: Viewer{Team: "red"}}) // a team's coach
	for i := range out {
		out[i].view = resolve(t, pw.a, out[i].Viewer)
	}
	return out
}

func mustVis(s string) Visibility {
	v, err := ParseVisibility(s)
	if err != nil {
		panic(err)
	}
	return v
}

// refWho is the reference's owner and team of an entity.
type refWho struct{ owner, team string }

// refVisible is the reference: may viewer v see field of an entity whose
// owner and team are w?
func (pw *propWorld) refVisible(v propViewer, field string, w refWho) bool {
	vis := pw.vis[field]
	if vis == "" || field == "side" || field == "owner" {
		return true
	}
	if slices.Contains(v.sees, vis) {
		return true
	}
	own := v.Player != "" && v.Player == w.owner
	team := v.Team // a spectator's; a player's follows the game
	if v.Player != "" {
		whos := pw.viewerWho
		if whos == nil {
			whos = pw.who
		}
		team = whos(v.Player).team
	}
	switch vis {
	case "owner":
		return own
	case "team":
		return own || team != "" && team == w.team
	}
	return false
}

// refFields is the reference's picture of the entities' "side" and
// "owner" fields.
type refFields map[string]map[string]string

// sides reads every entity's side and owner from the FSM.
func (pw *propWorld) sides() refFields {
	out := refFields{}
	for _, id := range propEntities {
		e, err := pw.g.f.Entity("w", id)
		if err != nil {
			continue
		}
		out[id] = map[string]string{}
		for _, f := range e.Fields {
			if (f.Name == "side" || f.Name == "owner") && f.Value.Kind == fsm.KindString {
				out[id][f.Name] = f.Value.Str
			}
		}
	}
	return out
}

// who is an entity's owner (its owner field, or itself) and team (its
// side, or its owner's).
func (rf refFields) who(entity string) refWho {
	w := refWho{owner: entity}
	e := rf[entity]
	if o, ok := e["owner"]; ok {
		w.owner = o
	}
	if side, ok := e["side"]; ok {
		w.team = side
	} else if w.owner != entity {
		w.team = rf[w.owner]["side"]
	}
	return w
}

// after returns rf with the applied changes of ev before index n made.
func (rf refFields) after(ev *fsm.Event, n int) refFields {
	out := refFields{}
	for id, m := range rf {
		out[id] = maps.Clone(m)
	}
	if ev.Status != fsm.StatusApplied {
		return out
	}
	for _, c := range ev.Changes[:n] {
		switch {
		case c.Field == "":
			delete(out, c.Entity)
		case c.Field == "side" || c.Field == "owner":
			if out[c.Entity] == nil {
				out[c.Entity] = map[string]string{}
			}
			out[c.Entity][c.Field] = c.Value.Str
		default:
			if out[c.Entity] == nil {
				out[c.Entity] = map[string]string{}
			}
		}
	}
	return out
}

// who reads an entity's owner and team from the FSM now.
func (pw *propWorld) who(entity string) refWho { return pw.sides().who(entity) }

// step plays one random action and records the versions it gave.
func (pw *propWorld) step(t *rapid.T) *fsm.Event {
	g := pw.g
	seq := len(g.events) + 1
	player := rapid.SampledFrom(propPlayers).Draw(t, "player")
	var ops []fsm.Op
	for range rapid.IntRange(1, 3).Draw(t, "ops") {
		e := rapid.SampledFrom(propEntities).Draw(t, "entity")
		switch rapid.IntRange(0, 6).Draw(t, "op") {
		case 0, 1:
			f := rapid.SampledFrom(propStrings).Draw(t, "field")
			ops = append(ops, set(e, f, fsm.String(fmt.Sprintf("V%dx%sx%s", seq, f, e))))
		case 2:
			ops = append(ops, incr(e, "C0", rapid.Int64Range(-3, 3).Draw(t, "by")))
		case 3:
			ops = append(ops, add(e, "S0", fsm.String(fmt.Sprintf("V%dxS0x%s", seq, e))))
		case 4:
			if cur, err := g.f.Entity("w", e); err == nil {
				for _, f := range cur.Fields {
					if f.Name == "S0" && len(f.Set) > 0 {
						ops = append(ops, remove(e, "S0", rapid.SampledFrom(f.Set).Draw(t, "element")))
					}
				}
			}
		case 5:
			if rapid.Bool().Draw(t, "owner") {
				ops = append(ops, set(e, "owner", fsm.String(rapid.SampledFrom(propPlayers).Draw(t, "owned by"))))
			} else {
				ops = append(ops, set(e, "side", fsm.String(rapid.SampledFrom([]string{"red", "blue"}).Draw(t, "side"))))
			}
		case 6:
			if rapid.Bool().Draw(t, "delete") {
				ops = append(ops, del(e))
			} else { // a conflict: its payload is the field's current state
				f := rapid.SampledFrom(propStrings).Draw(t, "field")
				ops = append(ops, expect(set(e, f, fsm.String("never")), 1<<40))
			}
		}
	}
	if len(ops) == 0 {
		ops = append(ops, incr("OB0", "C0", 1))
	}
	ev := g.act(player, ops...)
	if ev.Status == fsm.StatusApplied {
		for _, c := range ev.Changes {
			if c.Field == "" {
				continue
			}
			m := pw.versions[c.Entity]
			if m == nil {
				m = map[string][]uint64{}
				pw.versions[c.Entity] = m
			}
			m[c.Field] = append(m[c.Field], c.Version)
		}
	}
	return ev
}

// checkBytes checks what was made for v: each value token's field is one
// v may see on its entity, whose owner and team are whos(entity).
func (pw *propWorld) checkBytes(t *rapid.T, v propViewer, b []byte, whos func(string) refWho) {
	for _, tok := range tokenRE.FindAll(b, -1) {
		var seq int
		var field, entity string
		parts := regexp.MustCompile(`x`).Split(string(tok), 3)
		_, err := fmt.Sscanf(parts[0], "V%d", &seq)
		require.NoError(t, err)
		field, entity = parts[1], parts[2]
		if !pw.refVisible(v, field, whos(entity)) {
			t.Fatalf("view %+v got %s: field %s of %s (%+v) is %q to it\n%s", v.Viewer, tok, field, entity,
				whos(entity), pw.vis[field], b)
		}
	}
}

// checkVersion checks that version was held by a field of entity that v
// may see.
func (pw *propWorld) checkVersion(t *rapid.T, v propViewer, entity string, version uint64, w refWho, what string) {
	for f, vs := range pw.versions[entity] {
		if slices.Contains(vs, version) && pw.refVisible(v, f, w) {
			return
		}
	}
	t.Fatalf("view %+v got version %d of %s (%s): no field it may see had it", v.Viewer, version, entity, what)
}

func TestPropertyFilteredEventsShowNothingTheViewMayNotSee(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pw := newPropWorld(t)
		viewers := pw.viewers(t)
		flt := NewFilter(pw.a, NewState("w"), nil)
		for range rapid.IntRange(1, 40).Draw(t, "events") {
			before := pw.sides()
			ev := pw.step(t)
			p, err := flt.Prepare(ev)
			require.NoError(t, err)
			// An entity's owner and team after the event, or, for one the
			// event deletes, just before its (last) delete.
			lastDelete := func(e string) int {
				last := 0
				for i, c := range ev.Changes {
					if c.Entity == e && c.Field == "" {
						last = i
					}
				}
				return last
			}
			whos := func(e string) refWho {
				if _, err := pw.g.f.Entity("w", e); err == nil {
					return pw.who(e)
				}
				return before.after(ev, lastDelete(e)).who(e)
			}
			// An entity's owner and team just before the delete at i.
			whoAtDelete := func(e string, i int) refWho { return before.after(ev, i).who(e) }
			for _, v := range viewers {
				out := flt.Event(p, v.view)
				if out == nil {
					continue
				}
				b, err := json.Marshal(out.Wire())
				require.NoError(t, err)
				pw.checkBytes(t, v, b, whos)
				for _, c := range out.Changes {
					w := whos(c.Entity)
					if c.Field != "" {
						require.True(t, pw.refVisible(v, c.Field, w), "field %s of %s", c.Field, c.Entity)
					} else {
						w = whoAtDelete(c.Entity, slices.IndexFunc(ev.Changes, func(o fsm.Change) bool {
							return o.Entity == c.Entity && o.Field == "" && o.Op == c.Op
						}))
					}
					if c.Version != 0 && ev.Status == fsm.StatusApplied {
						pw.checkVersion(t, v, c.Entity, c.Version, w, "event change")
					}
				}
				if ev.Player != v.Player && len(ev.Changes) > 0 {
					require.NotEmpty(t, out.Changes, "an event of another player with nothing visible is dropped")
				}
			}
		}
	})
}

func TestPropertyKeyframesAndDeltasShowNothingTheViewMayNotSee(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pw := newPropWorld(t)
		viewers := pw.viewers(t)
		tk := NewTicker(pw.a, NewState("w"), nil)
		clients := make([]*client, len(viewers))
		join := func(i int) {
			k := Keyframe(pw.a, tk.State(), nil, viewers[i].view)
			b, err := json.Marshal(k)
			require.NoError(t, err)
			pw.checkBytes(t, viewers[i], b, pw.who)
			for id, we := range k.Entities {
				for f := range we.Fields {
					require.True(t, pw.refVisible(viewers[i], f, pw.who(id)), "keyframe field %s of %s", f, id)
				}
				pw.checkVersion(t, viewers[i], id, we.Version, pw.who(id), "keyframe entity")
			}
			clients[i] = &client{}
			clients[i].keyframe(*k)
		}
		for range rapid.IntRange(1, 40).Draw(t, "events") {
			require.NoError(t, tk.Apply(pw.step(t)))
			if rapid.IntRange(0, 3).Draw(t, "tick") != 0 {
				continue
			}
			for i, v := range viewers {
				if clients[i] == nil {
					if rapid.Bool().Draw(t, "join") {
						join(i)
					}
					continue
				}
				if tk.Resync(v.view) { // its player changed team: a keyframe
					join(i)
					continue
				}
				d := tk.Delta(v.view)
				if d == nil {
					continue
				}
				b, err := json.Marshal(d)
				require.NoError(t, err)
				pw.checkBytes(t, v, b, pw.who)
				for id, we := range d.Entities {
					for f := range we.Fields {
						require.True(t, pw.refVisible(v, f, pw.who(id)), "delta field %s of %s", f, id)
					}
					if !we.Deleted && we.Version != 0 {
						pw.checkVersion(t, v, id, we.Version, pw.who(id), "delta entity")
					}
				}
				clients[i].delta(*d)
			}
			tk.Reset()
		}
		// A watcher that applied its keyframe and every delta since sees
		// what a keyframe made now shows (the last tick flushed first).
		for i, v := range viewers {
			if clients[i] == nil {
				continue
			}
			if tk.Resync(v.view) {
				join(i)
			} else if d := tk.Delta(v.view); d != nil {
				clients[i].delta(*d)
			}
			want := Keyframe(pw.a, tk.State(), nil, v.view)
			requireSameEntities(t, want.Entities, clients[i].ents)
		}
	})
}

// TestPropertyPipelineFramesShowNothingTheViewMayNotSee checks the bytes a
// pipeline queues for each viewer (keyframes, deltas, aggregates, the
// keyframes of viewers that fell behind), and that a viewer that applies
// them holds what its view may see.
func TestPropertyPipelineFramesShowNothingTheViewMayNotSee(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pw := newPropWorld(t)
		viewers := pw.viewers(t)
		views := map[string]fsm.ViewRule{
			"kills": {Kind: "sum", Field: "C0", By: "team"},
			"count": {Kind: "count", Field: "F0", By: "player"},
		}
		r := fsm.Rules{Schema: fsm.Schema{Views: views}}
		ag, err := NewAggregates(pw.a, r)
		require.NoError(t, err)
		fd := newFeed()
		now := time.Unix(0, t0)
		cfg := DefaultConfig()
		cfg.World, cfg.Access, cfg.Subscribe, cfg.Aggregates = "w", pw.a, fd.subscribe, ag
		cfg.Now, cfg.Queue = func() time.Time { return now }, rapid.IntRange(4, 8).Draw(t, "queue")
		cfg.KeyframeInterval = time.Duration(rapid.IntRange(1, 20).Draw(t, "interval")) * time.Second
		p, err := newPipeline(cfg)
		require.NoError(t, err)
		// Each frame is checked against the teams at its seq: a viewer
		// reads it later, when they may have changed.
		teamsAt := map[uint64]refFields{0: {}}
		// Viewers in events mode get what a Filter of their own makes.
		ref := NewFilter(pw.a, NewState("w"), nil)
		prepared := map[uint64]*Prepared{}
		eventsMode := make([]bool, len(viewers))
		members := make([]*Member, len(viewers))
		clients := make([]*client, len(viewers))
		read := func(i int, all bool) {
			m := members[i]
			for len(m.ch) > 0 {
				f := <-m.ch
				team := teamsAt[f.Seq].who
				pw.viewerWho = team
				if f.Type != wire.TypeEvents { // each event has its own teams: see below
					pw.checkBytes(t, viewers[i], f.Data, team)
					// and the binary codec's bytes, with and without versions
					for _, c := range []Codec{CodecMsgpack, CodecMsgpack | CodecLean} {
						b, _, err := f.Encoded(c)
						require.NoError(t, err)
						pw.checkBytes(t, viewers[i], b, team)
					}
				}
				switch f.Type {
				case wire.TypeKeyframe:
					k := decodeKeyframe(t, f)
					for id, we := range k.Entities {
						for fl := range we.Fields {
							require.True(t, pw.refVisible(viewers[i], fl, team(id)))
						}
					}
					clients[i].keyframe(k)
				case wire.TypeWatchDelta:
					require.False(t, eventsMode[i])
					d := decodeDelta(t, f)
					for id, we := range d.Entities {
						for fl := range we.Fields {
							require.True(t, pw.refVisible(viewers[i], fl, team(id)))
						}
					}
					clients[i].delta(d)
				case wire.TypeEvents:
					require.True(t, eventsMode[i])
					var e wire.Events
					require.NoError(t, json.Unmarshal(f.Data, &e))
					var want []wire.Event
					view := viewers[i].view // a player's team as at the frame's seq
					if view.player != "" && pw.a.anyTeam {
						view.team = teamsAt[e.Seq].who(view.player).team
					}
					for seq := e.From; seq <= e.Seq; seq++ {
						if ev := filterEvent(pw.a, prepared[seq], view); ev != nil {
							want = append(want, ev.Wire())
						}
					}
					wb, err := json.Marshal(want)
					require.NoError(t, err)
					gb, err := json.Marshal(e.Events)
					require.NoError(t, err)
					// The events as a Filter shows them, which the property
					// test of filtered events checks byte by byte.
					require.JSONEq(t, string(wb), string(gb))
				case wire.TypeView:
					var v wire.ViewFrame
					require.NoError(t, json.Unmarshal(f.Data, &v))
					rule := views[v.Name]
					whole := true
					for _, e := range propEntities {
						whole = whole && pw.refVisible(viewers[i], rule.Field, team(e))
					}
					if !whole { // cut to the viewer's own group: it sees the field on each of its entities
						require.LessOrEqual(t, len(v.Groups), 1, "aggregate %s of %s reached a view that may not see it whole", v.Name, rule.Field)
						for grp := range v.Groups {
							own := viewers[i].Player
							if rule.By == "team" {
								own = viewers[i].Team
								if viewers[i].Player != "" {
									own = team(viewers[i].Player).team
								}
							}
							require.Equal(t, own, grp, "aggregate %s: another's group", v.Name)
							for _, e := range propEntities {
								w := team(e)
								if rule.By == "team" && w.team == grp || rule.By == "player" && w.owner == grp {
									require.True(t, pw.refVisible(viewers[i], rule.Field, w),
										"aggregate %s of %s counts %s, which the view may not see", v.Name, rule.Field, e)
								}
							}
						}
					}
				}
				if !all {
					return
				}
			}
		}
		for range rapid.IntRange(1, 40).Draw(t, "events") {
			ev := pw.step(t)
			teamsAt[ev.Seq] = pw.sides()
			pe, err := ref.Prepare(ev)
			require.NoError(t, err)
			prepared[ev.Seq] = pe
			p.delay.Push(ev)
			now = time.Unix(0, ev.Time)
			if rapid.IntRange(0, 2).Draw(t, "tick") == 0 {
				require.NoError(t, p.step(now))
			}
			i := rapid.IntRange(0, len(viewers)-1).Draw(t, "viewer")
			switch {
			case members[i] == nil:
				join := p.Join
				if eventsMode[i] = rapid.Bool().Draw(t, "events mode"); eventsMode[i] {
					join = p.JoinEvents
				}
				m, err := join(viewers[i].view)
				require.NoError(t, err)
				members[i], clients[i] = m, &client{}
			default:
				read(i, rapid.Bool().Draw(t, "read all"))
			}
		}
		now = now.Add(time.Hour) // the last keyframes and deltas
		require.NoError(t, p.step(now))
		for i, m := range members {
			if m == nil {
				continue
			}
			read(i, true)
			require.NoError(t, p.step(now)) // a viewer that fell behind gets its keyframe
			read(i, true)
			if eventsMode[i] {
				continue // its events were checked against the Filter's
			}
			want := Keyframe(pw.a, p.ticker.State(), nil, viewers[i].view)
			requireSameEntities(t, want.Entities, clients[i].ents)
		}
	})
}
