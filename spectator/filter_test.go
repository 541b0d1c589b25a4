package spectator

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// fieldsOf returns "entity.field" of each change, "entity" for
// entity-level ones.
func fieldsOf(ev *fsm.Event) []string {
	var out []string
	for _, c := range ev.Changes {
		if c.Field == "" {
			out = append(out, c.Entity)
		} else {
			out = append(out, c.Entity+"."+c.Field)
		}
	}
	return out
}

func strFields(names ...string) map[string]fsm.FieldRule {
	m := map[string]fsm.FieldRule{}
	for _, n := range names {
		m[n] = fsm.FieldRule{Type: fsm.KindString, Policy: fsm.PolicyAuthoritative}
	}
	return m
}

func TestFilterShowsEachViewOnlyTheFieldsItMaySee(t *testing.T) {
	a := access(t, map[string]string{"pos": "", "hand": "owner", "plan": "team", "mine": "hidden", "aim": "casters", "side": ""},
		map[string]fsm.ViewerRule{"caster": {Sees: []string{"casters", "hidden"}}, "coach": {Sees: []string{"team"}}},
		fsm.TeamRule{From: "field", Key: "side"})
	g := newGame(t, "w", strFields("pos", "hand", "plan", "mine", "aim", "side"))
	f := NewFilter(a, NewState("w"), nil)
	prep := func(ev *fsm.Event) *Prepared {
		p, err := f.Prepare(ev)
		require.NoError(t, err)
		return p
	}
	prep(g.act("ann", set("ann", "side", fsm.String("red"))))
	prep(g.act("bob", set("bob", "side", fsm.String("red"))))
	prep(g.act("cat", set("cat", "side", fsm.String("blue"))))
	p := prep(g.act("ann", set("ann", "pos", fsm.String("1")), set("ann", "hand", fsm.String("ace")),
		set("ann", "plan", fsm.String("rush")), set("ann", "mine", fsm.String("x")), set("ann", "aim", fsm.String("b"))))

	for name, tc := range map[string]struct {
		viewer Viewer
		want   []string
	}{
		"the owner":            {Viewer{Player: "ann", Team: "red"}, []string{"ann.pos", "ann.hand", "ann.plan"}},
		"a teammate":           {Viewer{Player: "bob", Team: "red"}, []string{"ann.pos", "ann.plan"}},
		"an opponent":          {Viewer{Player: "cat", Team: "blue"}, []string{"ann.pos"}},
		"the public":           {Viewer{}, []string{"ann.pos"}},
		"the red team's coach": {Viewer{Team: "red"}, []string{"ann.pos", "ann.plan"}},
		"a coach of all teams": {Viewer{Class: "coach"}, []string{"ann.pos", "ann.plan"}},
		"a caster":             {Viewer{Class: "caster"}, []string{"ann.pos", "ann.mine", "ann.aim"}},
	} {
		out := f.Event(p, resolve(t, a, tc.viewer))
		require.NotNil(t, out, name)
		require.Equal(t, tc.want, fieldsOf(out), name)
		for e, fields := range out.Wire().Versions {
			for fl := range fields {
				require.Contains(t, tc.want, e+"."+fl, "%s: versions list only fields it may see", name)
			}
		}
		if tc.viewer.Player == "ann" {
			require.Equal(t, uint64(2), out.ClientSeq, "own client seq stays")
		} else {
			require.Zero(t, out.ClientSeq, "%s: another player's client seq counts hidden actions too", name)
		}
	}
}

func TestFilterDropsOtherPlayersEventsThatChangedOnlyHiddenFields(t *testing.T) {
	a := access(t, map[string]string{"pos": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("pos", "mine"))
	f := NewFilter(a, NewState("w"), nil)
	p, err := f.Prepare(g.act("ann", set("ann", "mine", fsm.String("x"))))
	require.NoError(t, err)
	require.Nil(t, f.Event(p, resolve(t, a, Viewer{})), "nothing of it is visible: not even that it happened")
	own := f.Event(p, resolve(t, a, Viewer{Player: "ann"}))
	require.NotNil(t, own, "a player always learns its own action's outcome")
	require.Empty(t, own.Changes)
	require.Equal(t, fsm.StatusApplied, own.Status)

	// A rejection shows nothing but that someone tried, and why, which may
	// be about a hidden field: only its player sees it.
	rej := &fsm.Event{World: "w", Seq: 2, Player: "bob", Status: fsm.StatusRejected, Reason: "type_mismatch"}
	p, err = f.Prepare(rej)
	require.NoError(t, err)
	require.Nil(t, f.Event(p, resolve(t, a, Viewer{})))
	require.Equal(t, "type_mismatch", f.Event(p, resolve(t, a, Viewer{Player: "bob"})).Reason)
}

func TestFilterGivesADeleteTheLastVersionTheViewSaw(t *testing.T) {
	a := access(t, map[string]string{"pos": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("pos", "mine"))
	f := NewFilter(a, NewState("w"), nil)
	for _, ev := range []*fsm.Event{
		g.act("ann", set("ann", "pos", fsm.String("1"))),   // seq 1
		g.act("ann", set("ann", "mine", fsm.String("x"))),  // seq 2: hidden
		g.act("ann", set("box", "mine", fsm.String("y"))),  // seq 3: an entity with only hidden fields
		g.act("ann", set("ann", "mine", fsm.String("x2"))), // seq 4: hidden
	} {
		_, err := f.Prepare(ev)
		require.NoError(t, err)
	}
	ev := g.act("bob", del("ann"), del("box"))
	require.Equal(t, uint64(4), ev.Changes[0].Version, "the FSM's delete carries the hidden field's version")
	p, err := f.Prepare(ev)
	require.NoError(t, err)
	out := f.Event(p, resolve(t, a, Viewer{}))
	require.Equal(t, []string{"ann"}, fieldsOf(out), "box was never visible: its delete is not either")
	require.Equal(t, uint64(1), out.Changes[0].Version)
}

func TestFilterCutsConflictPayloadsOfFieldsTheViewMayNotSee(t *testing.T) {
	a := access(t, map[string]string{"pos": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("pos", "mine"))
	f := NewFilter(a, NewState("w"), nil)
	for _, ev := range []*fsm.Event{
		g.act("ann", set("ann", "pos", fsm.String("1")), set("ann", "mine", fsm.String("secret"))),
	} {
		_, err := f.Prepare(ev)
		require.NoError(t, err)
	}
	ev := g.act("bob", expect(set("ann", "pos", fsm.String("2")), 9), expect(set("ann", "mine", fsm.String("z")), 9))
	require.Equal(t, fsm.StatusConflict, ev.Status)
	require.Len(t, ev.Changes, 2)
	p, err := f.Prepare(ev)
	require.NoError(t, err)
	out := f.Event(p, resolve(t, a, Viewer{Player: "bob"}))
	require.Equal(t, []string{"ann.pos"}, fieldsOf(out), "the hidden field's current value and version stay hidden")

	// A delete's expect on the entity's version conflicts with the
	// version the view may see, not the hidden one.
	ev = g.act("bob", fsm.Op{Kind: fsm.OpDelete, Entity: "ann", Expect: fsm.Expect{Mode: fsm.ExpectVersion, Version: 9}})
	require.Equal(t, fsm.StatusConflict, ev.Status)
	p, err = f.Prepare(ev)
	require.NoError(t, err)
	out = f.Event(p, resolve(t, a, Viewer{Player: "bob"}))
	require.Equal(t, []string{"ann"}, fieldsOf(out))
	require.Equal(t, uint64(1), out.Changes[0].Version)
}

func TestFilterWithoutRestrictedFieldsReturnsTheEventItself(t *testing.T) {
	a := access(t, map[string]string{"pos": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("pos"))
	f := NewFilter(a, NewState("w"), nil)
	ev := g.act("ann", set("ann", "pos", fsm.String("1")))
	p, err := f.Prepare(ev)
	require.NoError(t, err)
	require.Same(t, ev, f.Event(p, resolve(t, a, Viewer{})))
	require.Equal(t, uint64(1), f.State().Seq())
}

func TestFilterTeamsFromClaimsAskTheEdge(t *testing.T) {
	a := access(t, map[string]string{"plan": "team"}, nil, fsm.TeamRule{From: "claim", Key: "team"})
	g := newGame(t, "w", strFields("plan"))
	teams := map[string]string{"ann": "red", "bob": "red", "cat": "blue"}
	f := NewFilter(a, NewState("w"), func(p string) string { return teams[p] })
	p, err := f.Prepare(g.act("ann", set("ann", "plan", fsm.String("rush"))))
	require.NoError(t, err)
	require.NotNil(t, f.Event(p, resolve(t, a, Viewer{Player: "bob", Team: "red"})))
	require.Nil(t, f.Event(p, resolve(t, a, Viewer{Player: "cat", Team: "blue"})))
}

func TestFilterRefusesEventsOutOfOrder(t *testing.T) {
	for _, restricted := range []string{"", "hidden"} {
		a := access(t, map[string]string{"pos": restricted}, nil, fsm.TeamRule{})
		f := NewFilter(a, NewState("w"), nil)
		_, err := f.Prepare(&fsm.Event{World: "w", Seq: 2})
		require.ErrorIs(t, err, ErrGap)
		_, err = f.Prepare(&fsm.Event{World: "v", Seq: 1})
		require.ErrorIs(t, err, ErrGap)
	}
}
