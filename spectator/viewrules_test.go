package spectator

import (
	"encoding/json"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// viewRulesWorld has a view of each case ViewRules decides.
func viewRulesWorld(teams fsm.TeamRule, ownerVisible string) fsm.Rules {
	return fsm.Rules{Schema: fsm.Schema{
		Access: map[string]fsm.FieldAccess{"hand": {Visible: "hidden"}, "side": {Visible: ""},
			OwnerField: {Visible: ownerVisible}},
		Viewers:  map[string]fsm.ViewerRule{"ref": {Sees: []string{"hidden"}}},
		Teams:    teams,
		Interest: fsm.InterestRule{Cell: 10, Radius: 2, X: "x", Y: "y"},
		Views: map[string]fsm.ViewRule{
			"score":   {Kind: "sum", Field: "score"},
			"byteam":  {Kind: "sum", Field: "score", By: "team"},
			"byowner": {Kind: "max", Field: "score", By: "player"},
			"hands":   {Kind: "count", Field: "hand"},
			"heat":    {Kind: "heatmap", Field: "score"},
		},
	}}
}

func TestViewRulesKeepOnlyTheViewsARelayOfTheViewMayMakeAsTheNodeDoes(t *testing.T) {
	field := fsm.TeamRule{From: "field", Key: "side"}
	for _, tc := range []struct {
		name  string
		rules fsm.Rules
		class string
		want  []string
	}{
		{"public: not the hidden field's", viewRulesWorld(field, ""), "", []string{"byowner", "byteam", "heat", "score"}},
		{"a class that sees it: all", viewRulesWorld(field, ""), "ref", []string{"byowner", "byteam", "hands", "heat", "score"}},
		{"teams from session data: not by team", viewRulesWorld(fsm.TeamRule{From: "data", Key: "team"}, ""), "",
			[]string{"byowner", "heat", "score"}},
		{"a hidden owner: not by player", viewRulesWorld(field, "hidden"), "", []string{"byteam", "heat", "score"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ViewRules(tc.rules, Viewer{Class: tc.class})
			require.NoError(t, err)
			require.Equal(t, tc.want, sortedKeys(got.Schema.Views))
			require.Empty(t, got.Schema.Access, "the relay's events are cut already")
			require.Equal(t, fsm.InterestRule{Cell: 10, X: "x", Y: "y"}, got.Schema.Interest)
			if _, ok := got.Schema.Views["byteam"]; ok {
				require.Equal(t, tc.rules.Schema.Teams, got.Schema.Teams)
			} else {
				require.Zero(t, got.Schema.Teams)
			}
			// What the relay reads back from the upstream's answer.
			b, err := json.Marshal(got)
			require.NoError(t, err)
			var back fsm.Rules
			require.NoError(t, json.Unmarshal(b, &back))
			require.Equal(t, got.Schema.Views, back.Schema.Views)
			a, err := NewAccess(back)
			require.NoError(t, err)
			_, err = NewAggregates(a, back)
			require.NoError(t, err)
		})
	}
}

func TestViewRulesLeaveOutTheGridAndTeamsNoViewNeeds(t *testing.T) {
	r := viewRulesWorld(fsm.TeamRule{From: "field", Key: "side"}, "")
	r.Schema.Views = map[string]fsm.ViewRule{"score": {Kind: "sum", Field: "score"}}
	got, err := ViewRules(r, Viewer{})
	require.NoError(t, err)
	require.Equal(t, fsm.Schema{Views: r.Schema.Views}, got.Schema)

	none, err := ViewRules(fsm.Rules{}, Viewer{})
	require.NoError(t, err)
	require.Empty(t, none.Schema.Views)
}

func TestViewRulesRefuseWhatJoinRefuses(t *testing.T) {
	r := viewRulesWorld(fsm.TeamRule{}, "")
	_, err := ViewRules(r, Viewer{Class: "nobody"})
	require.ErrorIs(t, err, ErrUnknownClass)
	r.Schema.Access["hand"] = fsm.FieldAccess{Visible: "sideways"}
	_, err = ViewRules(r, Viewer{})
	require.Error(t, err)
	r = viewRulesWorld(fsm.TeamRule{}, "")
	r.Schema.Views["bad"] = fsm.ViewRule{Kind: "median", Field: "score"}
	_, err = ViewRules(r, Viewer{})
	require.ErrorIs(t, err, ErrBadRules)
}
