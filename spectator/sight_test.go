package spectator

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func strField(name, v string, version uint64) fsm.FieldView {
	return fsm.FieldView{Name: name, Policy: fsm.PolicyAuthoritative, Value: fsm.String(v), Version: version}
}

func intField(name string, v int64, version uint64) fsm.FieldView {
	return fsm.FieldView{Name: name, Policy: fsm.PolicyAuthoritative, Value: fsm.Int(v), Version: version}
}

func TestAccessEntityCutsFieldsTheViewMayNotSee(t *testing.T) {
	a := mustAccess(t, fsm.Rules{Schema: fsm.Schema{
		Access: map[string]fsm.FieldAccess{"gold": {Visible: "owner"}, "plan": {Visible: "team"}, "trap": {Visible: "hidden"}},
		Teams:  fsm.TeamRule{From: "field", Key: "team"},
	}})
	ents := map[string]fsm.EntityView{
		"p1":   {ID: "p1", Version: 9, Seq: 20, Fields: []fsm.FieldView{intField("gold", 5, 9), intField("hp", 10, 3), strField("team", "red", 1)}},
		"p2":   {ID: "p2", Version: 4, Seq: 20, Fields: []fsm.FieldView{strField("team", "red", 4)}},
		"p3":   {ID: "p3", Version: 2, Seq: 20, Fields: []fsm.FieldView{strField("team", "blue", 2)}},
		"base": {ID: "base", Version: 7, Seq: 20, Fields: []fsm.FieldView{strField("owner", "p1", 1), strField("plan", "rush", 7), intField("trap", 1, 6)}},
	}
	lookup := func(id string) (fsm.EntityView, bool) { e, ok := ents[id]; return e, ok }
	view := func(player string) View {
		v, _, err := a.Resolve(Viewer{Player: player})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, player, entity string
		fields               []string
		version              uint64
	}{
		{"owner sees its gold", "p1", "p1", []string{"gold", "hp", "team"}, 9},
		{"teammate does not see gold, nor its version", "p2", "p1", []string{"hp", "team"}, 3},
		{"teammate sees the plan of an owned base", "p2", "base", []string{"owner", "plan"}, 7},
		{"other team sees no plan", "p3", "base", []string{"owner"}, 1},
		{"spectator", "", "base", []string{"owner"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := a.Entity(view(tc.player), ents[tc.entity], lookup, nil)
			if !ok {
				t.Fatal("entity hidden whole")
			}
			var names []string
			for _, f := range got.Fields {
				names = append(names, f.Name)
			}
			if !slices.Equal(names, tc.fields) || got.Version != tc.version || got.Seq != 20 || got.ID != tc.entity {
				t.Fatalf("got fields %v version %d seq %d, want %v version %d", names, got.Version, got.Seq, tc.fields, tc.version)
			}
		})
	}
}

func TestAccessEntityWithOnlyHiddenFieldsDoesNotShow(t *testing.T) {
	a := mustAccess(t, fsm.Rules{Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"trap": {Visible: "hidden"}}}})
	e := fsm.EntityView{ID: "pit", Version: 3, Fields: []fsm.FieldView{intField("trap", 1, 3)}}
	if got, ok := a.Entity(View{}, e, nil, nil); ok {
		t.Fatalf("shown: %+v", got)
	}
	open := mustAccess(t, fsm.Rules{})
	if got, ok := open.Entity(View{}, e, nil, nil); !ok || got.Version != 3 || len(got.Fields) != 1 {
		t.Fatalf("unrestricted rules changed the entity: %+v %v", got, ok)
	}
}

func TestAccessEntityTeamFromClaims(t *testing.T) {
	a := mustAccess(t, fsm.Rules{Schema: fsm.Schema{
		Access: map[string]fsm.FieldAccess{"plan": {Visible: "team"}},
		Teams:  fsm.TeamRule{From: "claim", Key: "team"},
	}})
	teams := map[string]string{"p1": "red", "p2": "red", "p3": "blue"}
	teamOf := func(p string) string { return teams[p] }
	e := fsm.EntityView{ID: "p1", Version: 2, Fields: []fsm.FieldView{strField("plan", "rush", 2)}}
	for player, want := range map[string]bool{"p1": true, "p2": true, "p3": false} {
		v, _, err := a.Resolve(Viewer{Player: player})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Entity(v, e, nil, teamOf); ok != want {
			t.Errorf("%s sees the plan: %v, want %v", player, ok, want)
		}
	}
}

func mustAccess(t *testing.T, r fsm.Rules) *Access {
	t.Helper()
	a, err := NewAccess(r)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Entity reads (Access.Entity, what the HTTP reads answer) and answers to
// actions (Access.Answer) of random games under random rules: every field
// the view may see is there, no other field, value or set element is, and
// every version shown was held by a field the view may see.
func TestPropertyEntityReadsAndAnswersShowExactlyWhatTheViewMaySee(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pw := newPropWorld(t)
		viewers := pw.viewers(t)
		lookup := func(id string) (fsm.EntityView, bool) {
			e, err := pw.g.f.Entity("w", id)
			return e, err == nil
		}
		for range rapid.IntRange(1, 30).Draw(t, "events") {
			ev := pw.step(t)
			// The answer to the action, as its player may see it.
			for _, v := range viewers {
				if v.Player != ev.Player || v.Class != "" {
					continue
				}
				got := pw.a.Answer(v.view, ev, lookup, nil)
				require.Equal(t, ev.ClientSeq, got.ClientSeq)
				require.Equal(t, ev.Status, got.Status)
				var want, kept []string
				for _, c := range ev.Changes {
					if c.Field != "" && pw.refVisible(v, c.Field, pw.who(c.Entity)) {
						want = append(want, c.Entity+"/"+c.Field)
					}
				}
				for _, c := range got.Changes {
					if c.Field == "" {
						if _, ok := lookup(c.Entity); ok {
							// Version 0 is a delete the same action's later
							// ops undid (the entity exists again): it names
							// no field's version.
							if c.Version != 0 {
								pw.checkVersion(t, v, c.Entity, c.Version, pw.who(c.Entity), "an entity-level change")
							}
						} else if pw.a.Restricted() {
							// Unrestricted, the answer is the event as it is:
							// no hidden field's version to keep out.
							require.Zero(t, c.Version, "a delete's version")
						}
						continue
					}
					kept = append(kept, c.Entity+"/"+c.Field)
				}
				require.Equal(t, want, kept, "%+v answered %+v", v.Viewer, ev)
				b, err := json.Marshal(got)
				require.NoError(t, err)
				pw.checkBytes(t, v, b, pw.who)
			}
			for _, id := range propEntities {
				e, ok := lookup(id)
				if !ok {
					continue
				}
				w := pw.who(id)
				for _, v := range viewers {
					got, shown := pw.a.Entity(v.view, e, lookup, nil)
					var want []string
					for _, f := range e.Fields {
						if pw.refVisible(v, f.Name, w) {
							want = append(want, f.Name)
						}
					}
					if !shown {
						require.Empty(t, want, "%+v: %s hidden whole", v.Viewer, id)
						continue
					}
					var names []string
					for _, f := range got.Fields {
						names = append(names, f.Name)
						pw.checkVersion(t, v, id, f.Version, w, "field "+f.Name)
					}
					require.Equal(t, want, names, "%+v reading %s", v.Viewer, id)
					pw.checkVersion(t, v, id, got.Version, w, "entity version")
					b, err := json.Marshal(got)
					require.NoError(t, err)
					pw.checkBytes(t, v, b, func(string) refWho { return w })
				}
			}
		}
	})
}
