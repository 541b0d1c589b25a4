package spectator

import (
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestParseVisibilityNamesEveryClassAndRefusesOthers(t *testing.T) {
	for i, n := range visibilityNames {
		v, err := ParseVisibility(n)
		require.NoError(t, err)
		require.Equal(t, Visibility(i), v)
		require.Equal(t, n, v.String())
	}
	v, err := ParseVisibility("")
	require.NoError(t, err)
	require.Equal(t, VisibleAll, v)
	_, err = ParseVisibility("friends")
	require.ErrorIs(t, err, ErrBadRules)
	require.Equal(t, "visibility(9)", Visibility(9).String())
}

func TestNewAccessRefusesRulesItCannotEnforce(t *testing.T) {
	field := map[string]fsm.FieldRule{"hp": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}}
	for name, s := range map[string]fsm.Schema{
		"visibility":      {Access: map[string]fsm.FieldAccess{"hp": {Visible: "friends"}}},
		"field delay":     {Access: map[string]fsm.FieldAccess{"hp": {Visible: "casters", Delay: fsm.Duration(-time.Second)}}},
		"long delay":      {Access: map[string]fsm.FieldAccess{"hp": {Visible: "casters", Delay: fsm.Duration(fsm.MaxViewDelay + 1)}}},
		"teams":           {Teams: fsm.TeamRule{From: "guild", Key: "g"}},
		"team key":        {Teams: fsm.TeamRule{From: "field"}},
		"team source":     {Teams: fsm.TeamRule{Key: "side"}},
		"unnamed class":   {Viewers: map[string]fsm.ViewerRule{"": {}}},
		"class delay":     {Viewers: map[string]fsm.ViewerRule{"tv": {Delay: fsm.Duration(fsm.MaxViewDelay + 1)}}},
		"class sees":      {Viewers: map[string]fsm.ViewerRule{"tv": {Sees: []string{"friends"}}}},
		"negative delay":  {Viewers: map[string]fsm.ViewerRule{"tv": {Delay: -1}}},
		"caster negative": {Access: map[string]fsm.FieldAccess{"hp": {Visible: "casters", Delay: -1}}},
	} {
		_, err := NewAccess(fsm.Rules{Fields: field, Schema: s})
		require.ErrorIs(t, err, ErrBadRules, name)
	}
}

func TestResolveTakesTheLargestDelayAndSharesViews(t *testing.T) {
	r := fsm.Rules{Fields: map[string]fsm.FieldRule{
		"pos":  {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"cash": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"plan": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
	}, Schema: fsm.Schema{
		Access: map[string]fsm.FieldAccess{
			"pos":  {Visible: "casters", Delay: fsm.Duration(90 * time.Second)},
			"cash": {Visible: "team"},
			"plan": {Visible: "all"}, // the default spelled out
		},
		Viewers: map[string]fsm.ViewerRule{
			"caster": {Delay: fsm.Duration(30 * time.Second), Sees: []string{"casters", "hidden"}},
			"public": {Delay: fsm.Duration(10 * time.Second)},
		},
	}}
	a, err := NewAccess(r)
	require.NoError(t, err)
	require.True(t, a.Restricted())
	require.Equal(t, []string{"", "caster", "public"}, a.Classes())
	require.Equal(t, VisibleCasters, a.Visibility("pos"))
	require.Equal(t, VisibleAll, a.Visibility("plan"))
	require.Empty(t, a.TeamField())

	_, d, err := a.Resolve(Viewer{Class: "caster"})
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, d, "casters fields wait their own delay")
	_, d, err = a.Resolve(Viewer{Class: "public", Delay: 5 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 10*time.Second, d, "a viewer may not lower the server's delay")
	_, d, err = a.Resolve(Viewer{Class: "public", Delay: 20 * time.Second})
	require.NoError(t, err)
	require.Equal(t, 20*time.Second, d, "a viewer may raise it")

	_, _, err = a.Resolve(Viewer{Class: "director"})
	require.ErrorIs(t, err, ErrUnknownClass)
	_, _, err = a.Resolve(Viewer{Delay: -time.Second})
	require.ErrorIs(t, err, ErrBadDelay)
	_, _, err = a.Resolve(Viewer{Delay: fsm.MaxViewDelay + 1})
	require.ErrorIs(t, err, ErrBadDelay)

	v1, _, _ := a.Resolve(Viewer{Class: "public", Team: "red"})
	v2, _, _ := a.Resolve(Viewer{Class: "public", Team: "red", Delay: time.Minute})
	v3, _, _ := a.Resolve(Viewer{Class: "public", Team: "blue"})
	require.Equal(t, v1, v2, "the delay is not part of the view")
	require.NotEqual(t, v1, v3, "team fields make teams' views differ")
	p, _, _ := a.Resolve(Viewer{Player: "ann"})
	require.Equal(t, "ann", p.Player())
}

func TestResolveWithoutRestrictedFieldsGivesEveryoneOneView(t *testing.T) {
	a := access(t, map[string]string{"pos": "", "hp": "all"}, map[string]fsm.ViewerRule{"tv": {Sees: []string{"hidden"}}}, fsm.TeamRule{})
	require.False(t, a.Restricted())
	v1 := resolve(t, a, Viewer{Player: "ann", Team: "red"})
	v2 := resolve(t, a, Viewer{Class: "tv"})
	require.Equal(t, v1, v2)
	require.Equal(t, View{}, v1)
}

func TestResolveIgnoresTheTeamWhenNoFieldIsTeamVisible(t *testing.T) {
	a := access(t, map[string]string{"pos": "owner"}, nil, fsm.TeamRule{})
	require.Equal(t, resolve(t, a, Viewer{Team: "red"}), resolve(t, a, Viewer{Team: "blue"}))
}
