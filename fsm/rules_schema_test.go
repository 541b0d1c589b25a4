package fsm

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fullSchema sets every schema key to a valid, non-default value.
func fullSchema() Schema {
	return Schema{
		Access: map[string]FieldAccess{
			"hp":  {Write: "server", Visible: "team"},
			"pos": {Write: "owner", Visible: "casters", Delay: Duration(2 * time.Second)},
		},
		Actions: map[string]ActionRule{"attack": {
			Params:  map[string]string{"target": "string", "power": "int"},
			Pre:     []Precondition{{Expr: "params.power <= 10"}},
			Effects: []EffectRule{{Op: "incr", Entity: "params.target", Field: "hp", Value: "-params.power"}},
		}},
		Roles:      map[string]RoleRule{"medic": {Actions: []string{"attack"}, Raw: true}},
		Teams:      TeamRule{From: "claim", Key: "team"},
		Viewers:    map[string]ViewerRule{"caster": {Delay: Duration(30 * time.Second), Sees: []string{"team", "casters"}}},
		Views:      map[string]ViewRule{"score": {Kind: "sum", Field: "kills", By: "team"}},
		Interest:   InterestRule{Cell: 50, Radius: 2, X: "x", Y: "y"},
		IdleExpiry: Duration(time.Hour),
		Capacity:   64,
		Mode:       "ranked",
		Labels:     map[string]string{"map": "dust"},
		PlayerData: PlayerDataRule{PlayerWritable: []string{"settings", "loadout"}},
	}
}

func schemaFields() map[string]FieldRule {
	return map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}, "pos": {Type: KindFloat, Policy: PolicyAuthoritative}}
}

func TestRulesJSONOfTodaysKeysKeepsItsExactForm(t *testing.T) {
	r := Rules{Strict: true, Fair: Fairness{Window: 50 * time.Millisecond},
		Fields: map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.Equal(t, `{"strict":true,"fair_window":"50ms","fields":{"hp":{"type":"int","policy":"counter"}}}`, string(b))
}

func TestVisibilityKeysAreBuiltAndNeedLogVersion7(t *testing.T) {
	for name, js := range map[string]string{
		"visible":    `{"fields":{"hp":{"type":"int","policy":"counter","visible":"team"}}}`,
		"delay":      `{"fields":{"pos":{"type":"float","policy":"authoritative","visible":"casters","delay":"2s"}}}`,
		"teams":      `{"fields":{"team":{"type":"string","policy":"authoritative"}},"teams":{"from":"field","key":"team"}}`,
		"data teams": `{"teams":{"from":"data","key":"team"}}`,
		"viewers":    `{"viewers":{"caster":{"delay":"90s","sees":["hidden","casters"]}}}`,
		"interest":   `{"interest":{"cell":100,"radius":1,"x":"x","y":"y"}}`,
	} {
		var r Rules
		require.NoError(t, json.Unmarshal([]byte(js), &r), name)
		require.Equal(t, Versions{Log: 7, Snapshot: 4, Wire: 1}, Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: r}}), name)
		require.Equal(t, Versions{Log: 7, Snapshot: 4, Wire: 1}, Needs(&Command{Kind: CmdUpdateRules, Rules: &RulesUpdate{Rules: r}}), name)
	}
	// With actions too, the snapshot format of actions stays.
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"hp":{"type":"int","policy":"counter","write":"owner","visible":"owner"}}}`), &r))
	require.Equal(t, Versions{Log: 7, Snapshot: 5, Wire: 1}, Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: r}}))
}

func TestViewsAndClaimTeamsAreBuiltAndNeedLogVersion10(t *testing.T) {
	for name, js := range map[string]string{
		"scoreboard":  `{"fields":{"kills":{"type":"int","policy":"counter"}},"views":{"kills":{"kind":"sum","field":"kills","by":"player"}}}`,
		"feed":        `{"views":{"feed":{"kind":"feed","field":"killed"}}}`,
		"heatmap":     `{"interest":{"cell":100,"x":"x","y":"y"},"views":{"heat":{"kind":"heatmap","field":"x"}}}`,
		"claim teams": `{"teams":{"from":"claim","key":"team"}}`,
	} {
		var r Rules
		require.NoError(t, json.Unmarshal([]byte(js), &r), name)
		need := Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: r}})
		require.Equal(t, Versions{Log: 10, Snapshot: 4, Wire: 1}, need, name)
		require.Equal(t, need, Needs(&Command{Kind: CmdUpdateRules, Rules: &RulesUpdate{Rules: r}}), name)
		require.False(t, Versions{Log: 9, Snapshot: SnapshotVersion, Wire: 1}.Covers(need), "a log 9 cluster refuses %s", name)
		require.True(t, Supported().Covers(need), name)
	}
	// The larger snapshot format of actions stays.
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"hp":{"type":"int","policy":"counter","write":"owner"}},"views":{"hp":{"kind":"max","field":"hp"}}}`), &r))
	require.Equal(t, Versions{Log: 10, Snapshot: 5, Wire: 1}, Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: r}}))
}

func TestSchemaDefaultsSpelledOutAreNotSettings(t *testing.T) {
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"hp":{"type":"int","policy":"counter","write":"anyone","visible":"all"},"n":{"policy":"max"}},"interest":{},"teams":{},"capacity":0}`), &r))
	require.True(t, r.Schema.IsZero())
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.Equal(t, `{"strict":false,"fields":{"hp":{"type":"int","policy":"counter"},"n":{"type":"string","policy":"max"}}}`, string(b))
}

func TestSchemaKeysAreStoredInTheirJSONForm(t *testing.T) {
	r := Rules{Fields: schemaFields(), Schema: fullSchema()}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.Contains(t, string(b), `"pos":{"type":"float","policy":"authoritative","write":"owner","visible":"casters","delay":"2s"}`)
	require.Contains(t, string(b), `"idle_expiry":"1h0m0s"`)
	var back Rules
	require.NoError(t, json.Unmarshal(b, &back), "every key is built")
	require.Equal(t, r.Schema, back.Schema)
}

func TestSchemaShapeErrorsAreMalformed(t *testing.T) {
	long := strings.Repeat("x", maxExprLen+1)
	many := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[strings.Repeat("k", i+1)] = ""
		}
		return m
	}
	manyActions := map[string]ActionRule{}
	for k := range many(maxSchemaItems + 1) {
		manyActions[k] = ActionRule{}
	}
	manyRoles := map[string]RoleRule{}
	for k := range many(maxSchemaItems + 1) {
		manyRoles[k] = RoleRule{}
	}
	manyViewers := map[string]ViewerRule{}
	for k := range many(maxSchemaItems + 1) {
		manyViewers[k] = ViewerRule{}
	}
	act := func(a ActionRule) map[string]ActionRule { return map[string]ActionRule{"a": a} }
	manyExprs := map[string]ActionRule{}
	for i := range maxRuleExprs/maxSchemaItems + 1 {
		manyExprs[strings.Repeat("a", i+1)] = ActionRule{Pre: make([]Precondition, maxSchemaItems)}
	}
	acc := func(a FieldAccess) map[string]FieldAccess { return map[string]FieldAccess{"hp": a} }
	for what, s := range map[string]Schema{
		"access of an undeclared field": {Access: map[string]FieldAccess{"zz": {Write: "owner"}}},
		"empty access":                  {Access: acc(FieldAccess{})},
		"unknown write":                 {Access: acc(FieldAccess{Write: "everyone"})},
		"unknown visible":               {Access: acc(FieldAccess{Visible: "some"})},
		"negative delay":                {Access: acc(FieldAccess{Visible: "casters", Delay: -1})},
		"delay without casters":         {Access: acc(FieldAccess{Visible: "team", Delay: Duration(time.Second)})},
		"too many actions":              {Actions: manyActions},
		"too many expressions":          {Actions: manyExprs},
		"bad action name":               {Actions: map[string]ActionRule{"": {}}},
		"too many params":               {Actions: act(ActionRule{Params: many(maxSchemaItems + 1)})},
		"bad param name":                {Actions: act(ActionRule{Params: map[string]string{"": "int"}})},
		"bad param type":                {Actions: act(ActionRule{Params: map[string]string{"p": "list"}})},
		"empty precondition":            {Actions: act(ActionRule{Pre: []Precondition{{Expr: ""}}})},
		"long precondition":             {Actions: act(ActionRule{Pre: []Precondition{{Expr: long}}})},
		"bad effect op":                 {Actions: act(ActionRule{Effects: []EffectRule{{Op: "explode", Entity: "e"}}})},
		"effect without entity":         {Actions: act(ActionRule{Effects: []EffectRule{{Op: "set"}}})},
		"delete with a field":           {Actions: act(ActionRule{Effects: []EffectRule{{Op: "delete", Entity: "e", Field: "hp"}}})},
		"set without a value":           {Actions: act(ActionRule{Effects: []EffectRule{{Op: "set", Entity: "e", Field: "hp"}}})},
		"effect with a bad field name":  {Actions: act(ActionRule{Effects: []EffectRule{{Op: "set", Entity: "e", Field: long, Value: "1"}}})},
		"effect with a long value":      {Actions: act(ActionRule{Effects: []EffectRule{{Op: "set", Entity: "e", Field: "hp", Value: long}}})},
		"too many roles":                {Roles: manyRoles},
		"bad role name":                 {Roles: map[string]RoleRule{"": {}}},
		"role with undeclared action":   {Roles: map[string]RoleRule{"gm": {Actions: []string{"fly"}}}},
		"too many viewers":              {Viewers: manyViewers},
		"bad viewer name":               {Viewers: map[string]ViewerRule{"": {}}},
		"viewer delay too long":         {Viewers: map[string]ViewerRule{"v": {Delay: Duration(MaxViewDelay + 1)}}},
		"viewer sees unknown":           {Viewers: map[string]ViewerRule{"v": {Sees: []string{"all"}}}},
		"bad view name":                 {Views: map[string]ViewRule{"": {Kind: "sum"}}},
		"unknown view kind":             {Views: map[string]ViewRule{"v": {Kind: "median"}}},
		"unknown view grouping":         {Views: map[string]ViewRule{"v": {Kind: "sum", By: "guild"}}},
		"bad view field":                {Views: map[string]ViewRule{"v": {Kind: "sum", Field: long}}},
		"view without field":            {Views: map[string]ViewRule{"v": {Kind: "count"}}},
		"heatmap without grid":          {Views: map[string]ViewRule{"v": {Kind: "heatmap", Field: "hp"}}},
		"heatmap by team":               {Interest: InterestRule{Cell: 10, X: "x", Y: "y"}, Views: map[string]ViewRule{"v": {Kind: "heatmap", Field: "hp", By: "team"}}},
		"feed by player":                {Views: map[string]ViewRule{"v": {Kind: "feed", Field: "hp", By: "player"}}},
		"unknown team source":           {Teams: TeamRule{From: "dns", Key: "k"}},
		"team source without key":       {Teams: TeamRule{From: "claim"}},
		"team key without source":       {Teams: TeamRule{Key: "k"}},
		"negative cell":                 {Interest: InterestRule{Cell: -1}},
		"NaN cell":                      {Interest: InterestRule{Cell: math.NaN()}},
		"infinite cell":                 {Interest: InterestRule{Cell: math.Inf(1)}},
		"negative radius":               {Interest: InterestRule{Radius: -1}},
		"radius too large":              {Interest: InterestRule{Radius: maxRadius + 1}},
		"bad interest field":            {Interest: InterestRule{Y: long}},
		"grid without y":                {Interest: InterestRule{Cell: 10, X: "x"}},
		"negative idle expiry":          {IdleExpiry: -1},
		"negative capacity":             {Capacity: -1},
		"long mode":                     {Mode: long},
		"too many labels":               {Labels: many(maxSchemaItems + 1)},
		"bad label name":                {Labels: map[string]string{"": "v"}},
		"long label value":              {Labels: map[string]string{"k": long}},
		"too many player-writable keys": {PlayerData: PlayerDataRule{PlayerWritable: manyKeys(MaxSessionData + 1)}},
		"bad player-writable key":       {PlayerData: PlayerDataRule{PlayerWritable: []string{""}}},
		"player-writable key twice":     {PlayerData: PlayerDataRule{PlayerWritable: []string{"a", "b", "a"}}},
	} {
		r := Rules{Fields: map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}, Schema: s}
		require.ErrorIs(t, r.Validate(), ErrMalformed, what)
	}
}

func TestSchemaEncodesOnlyWhenSetAndRoundTrips(t *testing.T) {
	plain := Rules{Strict: true, Fields: schemaFields()}
	e := &encoder{}
	e.rules(plain)
	require.Zero(t, e.b[0]&rulesSchema, "today's keys keep today's bytes")

	full := Rules{Strict: true, Fields: schemaFields(), Schema: fullSchema()}
	e = &encoder{}
	e.rules(full)
	require.NotZero(t, e.b[0]&rulesSchema)
	d := &decoder{b: e.b}
	got := d.rules()
	require.NoError(t, d.err)
	require.Empty(t, d.b)
	require.Equal(t, full, got)

	require.NotEqual(t, rulesHash(2, plain), rulesHash(2, full), "the schema's keys are in the state hash")
	require.NotEqual(t, rulesHash(2, plain), rulesHash(3, plain), "and so is the rules version")
	require.Zero(t, rulesHash(1, full), "rules never updated add nothing to the hash")
}

func TestSchemaBlockMustBeCanonicalJSON(t *testing.T) {
	for what, blob := range map[string]string{
		"not JSON":      `{`,
		"unknown key":   `{"colour":"red"}`,
		"not canonical": `{ "capacity":1}`,
		"all defaults":  `{}`,
		"bad duration":  `{"idle_expiry":"soon"}`,
		"bare number":   `{"idle_expiry":5}`,
	} {
		e := &encoder{}
		e.byte(rulesSchema)
		e.uvarint(0)
		e.str(blob)
		d := &decoder{b: e.b}
		d.rules()
		require.ErrorIs(t, d.err, ErrMalformed, what)
	}
}

func TestSchemaThatCannotBeJSONPanicsWhenEncoded(t *testing.T) {
	// Validate refuses a NaN cell; encoding one anyway is a programming error.
	require.Panics(t, func() {
		(&encoder{}).rules(Rules{Schema: Schema{Interest: InterestRule{Cell: math.NaN()}}})
	})
}

func TestDurationJSONIsAGoDurationString(t *testing.T) {
	b, err := json.Marshal(Duration(1500 * time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, `"1.5s"`, string(b))
	var d Duration
	require.NoError(t, json.Unmarshal([]byte(`"2m"`), &d))
	require.Equal(t, Duration(2*time.Minute), d)
	require.ErrorIs(t, d.UnmarshalJSON([]byte(`12`)), ErrMalformed)
	require.ErrorIs(t, d.UnmarshalJSON([]byte(`"`)), ErrMalformed)
	require.ErrorIs(t, d.UnmarshalJSON([]byte(`"later"`)), ErrMalformed)
}

func TestRulesWireCarriesPlayerWritableDataKeysOnlyWhenSet(t *testing.T) {
	r := Rules{Schema: Schema{PlayerData: PlayerDataRule{PlayerWritable: []string{"settings", "loadout"}}}}
	w := r.Wire()
	require.NotNil(t, w.PlayerData)
	require.Equal(t, []string{"settings", "loadout"}, w.PlayerData.PlayerWritable)
	require.Nil(t, Rules{}.Wire().PlayerData, "no player_data key without writable keys")
}

// TestQuantumKeyIsBuiltAndNeedsLogVersion16: a float field's quantum (the
// precision spectators get) is a rules key of its own: a replica before
// log 16 refuses its schema block, so the leader proposes it only when
// every voter reads log 16, whichever rules kind carries it.
func TestQuantumKeyIsBuiltAndNeedsLogVersion16(t *testing.T) {
	js := `{"strict":false,"fields":{"x":{"type":"float","policy":"authoritative","quantum":0.1},"y":{"type":"float","policy":"max","visible":"team","quantum":0.25}}}`
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(js), &r))
	require.Equal(t, map[string]FieldAccess{"x": {Quantum: 0.1}, "y": {Visible: "team", Quantum: 0.25}}, r.Schema.Access)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.Equal(t, js, string(b), "the key keeps its JSON form")

	want := Versions{Log: 16, Snapshot: 4, Wire: 1}
	for _, c := range []Command{
		{Kind: CmdCreateWorld, World: &WorldSpec{Rules: r}},
		{Kind: CmdUpdateRules, Rules: &RulesUpdate{Rules: r}},
		{Kind: CmdUpdateRulesEvent, Rules: &RulesUpdate{Rules: r}},
	} {
		need := Needs(&c)
		require.Equal(t, want, need, c.Kind)
		require.False(t, Versions{Log: 15, Snapshot: SnapshotVersion, Wire: 1}.Covers(need), "a log 15 cluster refuses it")
		require.True(t, Supported().Covers(need))
		out, err := DecodeBatch(EncodeBatch(&Batch{Time: 1, Commands: []Command{c}}))
		require.NoError(t, err)
		require.Equal(t, c, out.Commands[0], "the quantum round-trips the log")
	}
	// Without a quantum the same rules need what they needed before.
	noQ := r
	noQ.Schema.Access = map[string]FieldAccess{"y": {Visible: "team"}}
	require.Equal(t, uint32(7), Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: noQ}}).Log)
	// With write access too, the snapshot format of actions stays.
	var w Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"x":{"type":"float","policy":"authoritative","write":"owner","quantum":2}}}`), &w))
	require.Equal(t, Versions{Log: 16, Snapshot: 5, Wire: 1}, Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: w}}))
	require.GreaterOrEqual(t, LogVersion, uint32(16))
}

func TestQuantumOfTheWrongFieldOrValueIsMalformed(t *testing.T) {
	for what, js := range map[string]string{
		"zero":          `{"fields":{"x":{"type":"float","policy":"authoritative","quantum":0}}}`,
		"negative":      `{"fields":{"x":{"type":"float","policy":"authoritative","quantum":-0.5}}}`,
		"a string":      `{"fields":{"x":{"type":"float","policy":"authoritative","quantum":"0.1"}}}`,
		"an int field":  `{"fields":{"x":{"type":"int","policy":"authoritative","quantum":1}}}`,
		"a counter":     `{"fields":{"x":{"policy":"counter","quantum":1}}}`,
		"a set":         `{"fields":{"x":{"type":"float","policy":"set","quantum":1}}}`,
		"a string type": `{"fields":{"x":{"policy":"authoritative","quantum":1}}}`,
	} {
		var r Rules
		err := json.Unmarshal([]byte(js), &r)
		require.ErrorIs(t, err, ErrMalformed, what)
		if what != "a string" {
			require.Contains(t, err.Error(), "quantum", what)
		}
	}
	float := map[string]FieldRule{"x": {Type: KindFloat, Policy: PolicyAuthoritative}}
	for what, q := range map[string]float64{"NaN": math.NaN(), "infinite": math.Inf(1), "negative": -1, "-Inf": math.Inf(-1)} {
		r := Rules{Fields: float, Schema: Schema{Access: map[string]FieldAccess{"x": {Quantum: q}}}}
		require.ErrorIs(t, r.Validate(), ErrMalformed, what)
	}
	require.NoError(t, Rules{Fields: float, Schema: Schema{Access: map[string]FieldAccess{"x": {Quantum: 1e-9}}}}.Validate())
}
