package fsm

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// arenaJSON is the example game of docs/RULES.md: players move on a grid
// at a bounded speed, attack within range after a cooldown, and pick up
// items where they stand. Positions, hit points and items are written
// only by the game server or through these actions; a player's emote is
// owner-writable.
const arenaJSON = `{
  "strict": true,
  "fields": {
    "owner":    {"type": "string", "policy": "authoritative", "write": "server"},
    "x":        {"type": "int",    "policy": "authoritative", "write": "server"},
    "y":        {"type": "int",    "policy": "authoritative", "write": "server"},
    "moved_at": {"type": "int",    "policy": "authoritative", "write": "server"},
    "shot_at":  {"type": "int",    "policy": "authoritative", "write": "server"},
    "hp":       {"type": "int",    "policy": "counter",       "write": "server"},
    "items":    {"type": "string", "policy": "set",           "write": "server"},
    "emote":    {"type": "string", "policy": "authoritative", "write": "owner"},
    "note":     {"type": "string", "policy": "authoritative"}
  },
  "actions": {
    "move": {
      "params": {"x": "int", "y": "int"},
      "pre": [
        {"name": "dead", "expr": "field(caller.id, 'hp') > 0"},
        {"name": "too_fast", "expr": "abs(params.x - field(caller.id, 'x')) + abs(params.y - field(caller.id, 'y')) <= 1 + (now - field_or(caller.id, 'moved_at', 0)) / 100000000"}
      ],
      "effects": [
        {"op": "set", "entity": "caller.id", "field": "x", "value": "params.x"},
        {"op": "set", "entity": "caller.id", "field": "y", "value": "params.y"},
        {"op": "set", "entity": "caller.id", "field": "moved_at", "value": "now"}
      ]
    },
    "attack": {
      "params": {"target": "string"},
      "pre": [
        {"name": "dead", "expr": "field(caller.id, 'hp') > 0"},
        {"name": "cooldown", "expr": "now - field_or(caller.id, 'shot_at', 0) >= 500000000"},
        {"name": "out_of_range", "expr": "(field(caller.id, 'x') - field(params.target, 'x')) * (field(caller.id, 'x') - field(params.target, 'x')) + (field(caller.id, 'y') - field(params.target, 'y')) * (field(caller.id, 'y') - field(params.target, 'y')) <= 9"}
      ],
      "effects": [
        {"op": "incr", "entity": "params.target", "field": "hp", "value": "-10"},
        {"op": "set", "entity": "caller.id", "field": "shot_at", "value": "now"}
      ]
    },
    "pickup": {
      "params": {"item": "string"},
      "pre": [
        "field(params.item, 'x') == field(caller.id, 'x') && field(params.item, 'y') == field(caller.id, 'y')",
        {"name": "owned", "expr": "!in_set(caller.id, 'items', params.item)"}
      ],
      "effects": [
        {"op": "add", "entity": "caller.id", "field": "items", "value": "params.item"},
        {"op": "delete", "entity": "params.item"}
      ]
    },
    "heal": {
      "params": {"who": "string", "amount": "float"},
      "pre": ["params.amount > 0.0 && has_field(params.who, 'hp') && version(params.who, 'hp') > 0 && caller.role == 'medic' && seq > 0"],
      "effects": [{"op": "incr", "entity": "params.who", "field": "hp", "value": "int(params.amount)"}]
    }
  },
  "roles": {"medic": {"actions": ["heal"]}, "gm": {"raw": true}}
}`

func arenaRules(t testingT) Rules {
	t.Helper()
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(arenaJSON), &r))
	return r
}

// arena is a harness with the arena world, two players (ann at 0,0 and bob
// at 2,2, 100 hp each) and a sword at 0,0, set up by the game server.
func arena(t testingT) *harness {
	h := newHarness(t)
	h.createWorld("a", arenaRules(t))
	srv := act("a", "server", 1,
		opSet("ann", "x", Int(0)), opSet("ann", "y", Int(0)), opIncr("ann", "hp", 100), opSet("ann", "owner", String("ann")),
		opSet("bob", "x", Int(2)), opSet("bob", "y", Int(2)), opIncr("bob", "hp", 100),
		opSet("sword", "x", Int(0)), opSet("sword", "y", Int(0)))
	srv.Role = RoleServer
	require.Equal(t, StatusApplied, h.event(srv).Status)
	return h
}

func declared(player string, seq uint64, name string, params ...Param) *Action {
	return &Action{World: "a", Player: player, Seq: seq, Name: name, Params: params, Role: RolePlayer}
}

func TestDeclaredActionAppliesItsEffectsWhenEveryPreconditionHolds(t *testing.T) {
	h := arena(t)
	ev := h.event(declared("ann", 1, "move", Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(0)}))
	require.Equal(t, StatusApplied, ev.Status, ev.Reason)
	require.Len(t, ev.Changes, 3)
	require.Equal(t, Int(1), h.field("a", "ann", "x").Value)
	require.Equal(t, Int(h.time), h.field("a", "ann", "moved_at").Value, "now is the batch's leader time")

	ev = h.event(declared("bob", 1, "attack", Param{Name: "target", Value: String("ann")}))
	require.Equal(t, StatusApplied, ev.Status, ev.Reason)
	require.Equal(t, Int(90), h.field("a", "ann", "hp").Value)
}

func TestFailingPreconditionRejectsWithItsName(t *testing.T) {
	h := arena(t)
	h.event(declared("ann", 1, "move", Param{Name: "x", Value: Int(0)}, Param{Name: "y", Value: Int(1)}))
	ev := h.event(declared("ann", 4, "move", Param{Name: "x", Value: Int(50)}, Param{Name: "y", Value: Int(1)}))
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, "too_fast", ev.Reason)
	require.Equal(t, Int(0), h.field("a", "ann", "x").Value, "nothing applied")

	require.Equal(t, StatusApplied, h.event(declared("bob", 1, "attack", Param{Name: "target", Value: String("ann")})).Status)
	ev = h.event(declared("bob", 2, "attack", Param{Name: "target", Value: String("ann")}))
	require.Equal(t, "cooldown", ev.Reason, "1 ms later")

	// A precondition that reads a missing field fails, it does not panic.
	ev = h.event(declared("carl", 1, "attack", Param{Name: "target", Value: String("ann")}))
	require.Equal(t, "dead", ev.Reason)
	// An unnamed precondition is named by its action and index.
	ev = h.event(declared("ann", 3, "pickup", Param{Name: "item", Value: String("sword")}))
	require.Equal(t, "pickup.pre0", ev.Reason)
}

func TestPickupAddsTheItemAndDeletesItsEntity(t *testing.T) {
	h := arena(t)
	ev := h.event(declared("ann", 1, "pickup", Param{Name: "item", Value: String("sword")}))
	require.Equal(t, StatusApplied, ev.Status, ev.Reason)
	_, err := h.f.Entity("a", "sword")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, []Value{String("sword")}, h.field("a", "ann", "items").Set)
}

func TestDeclaredActionChecksParamsAndRoles(t *testing.T) {
	h := arena(t)
	x, y := Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(0)}
	heal := func(seq uint64, role string, amount Value) *Action {
		a := declared("mia", seq, "heal", Param{Name: "amount", Value: amount}, Param{Name: "who", Value: String("ann")})
		a.Role = role
		return a
	}
	for name, tc := range map[string]struct {
		a    *Action
		code string
	}{
		"unknown action":     {declared("ann", 1, "fly"), CodeUnknownAction},
		"missing param":      {declared("ann", 2, "move", x), CodeMalformed},
		"misnamed param":     {declared("ann", 3, "move", x, Param{Name: "z", Value: Int(0)}), CodeMalformed},
		"param of a type":    {declared("ann", 4, "move", x, Param{Name: "y", Value: String("0")}), CodeTypeMismatch},
		"role not listed":    {heal(1, RolePlayer, Float(5)), CodeForbidden},
		"unlisted own role":  {heal(2, "gm", Float(5)), CodeForbidden},
		"precondition role":  {heal(3, RoleServer, Float(5)), "heal.pre0"},
		"effect fails":       {heal(4, "medic", Float(1e300)), CodeActionFailed},
		"ops and a name":     {&Action{World: "a", Player: "ann", Seq: 9, Name: "move", Ops: []Op{opSet("ann", "emote", String("hi"))}}, CodeMalformed},
		"params without one": {&Action{World: "a", Player: "ann", Seq: 10, Params: []Param{x}}, CodeMalformed},
	} {
		ev := h.event(tc.a)
		require.Equal(t, StatusRejected, ev.Status, name)
		require.Equal(t, tc.code, ev.Reason, name)
	}
	// A medic may heal; an int is taken for a float param.
	ev := h.event(heal(5, "medic", Int(5)))
	require.Equal(t, StatusApplied, ev.Status, ev.Reason)
	require.Equal(t, Int(105), h.field("a", "ann", "hp").Value)
	// Servers and admins may invoke any action.
	a := declared("ann", 11, "move", x, y)
	a.Role = RoleAdmin
	require.Equal(t, StatusApplied, h.event(a).Status)
}

func TestCheckRefusesUnknownActionsAndBadParamsBeforeCommit(t *testing.T) {
	h := arena(t)
	require.ErrorIs(t, h.f.Check(declared("ann", 1, "fly")), ErrUnknownAction)
	require.ErrorIs(t, h.f.Check(declared("ann", 1, "move")), ErrMalformed)
	require.NoError(t, h.f.Check(declared("ann", 1, "move", Param{Name: "x", Value: Int(50)}, Param{Name: "y", Value: Int(0)})),
		"preconditions read the state: only Apply evaluates them")
	h.createWorld("plain", Rules{})
	a := declared("ann", 1, "move")
	a.World = "plain"
	require.ErrorIs(t, h.f.Check(a), ErrUnknownAction)
	require.Equal(t, CodeUnknownAction, h.event(a).Reason)
}

func TestPlayersWriteOnlyWhatTheRulesLetThem(t *testing.T) {
	h := arena(t)
	raw := func(player, role string, seq uint64, ops ...Op) *Event {
		a := act("a", player, seq, ops...)
		a.Role = role
		return h.event(a)
	}
	// The mallory probe: a player's raw write of a server field.
	ev := raw("mallory", RolePlayer, 1, opIncr("ann", "hp", 999999))
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, CodeForbidden, ev.Reason)
	// Owner-writable: the owner by id, or by its owner field.
	require.Equal(t, StatusApplied, raw("ann", RolePlayer, 2, opSet("ann", "emote", String("gg"))).Status)
	require.Equal(t, StatusApplied, raw("bob", RolePlayer, 1, opSet("bob", "emote", String("gg"))).Status)
	require.Equal(t, CodeForbidden, raw("bob", RolePlayer, 2, opSet("ann", "emote", String("gg"))).Reason)
	require.Equal(t, StatusApplied, raw("server", RoleServer, 2, opSet("pet", "owner", String("bob"))).Status)
	require.Equal(t, StatusApplied, raw("bob", RolePlayer, 3, opSet("pet", "emote", String("wag"))).Status)
	// A field with no write rule: only raw roles, in a world of actions.
	require.Equal(t, CodeForbidden, raw("ann", RolePlayer, 3, opSet("ann", "note", String("x"))).Reason)
	require.Equal(t, StatusApplied, raw("ann", "gm", 4, opSet("ann", "note", String("x"))).Status)
	require.Equal(t, CodeForbidden, raw("ann", "gm", 5, opSet("ann", "hp", Int(1))).Reason, "server fields stay the server's")
	require.Equal(t, CodeForbidden, raw("ann", "stranger", 6, opSet("ann", "note", String("y"))).Reason, "an unknown role is a player")
	// Deletes: every field of the entity must be writable.
	require.Equal(t, CodeForbidden, raw("bob", RolePlayer, 4, opDelete("pet")).Reason)
	require.Equal(t, CodeForbidden, raw("bob", RolePlayer, 5, opDelete("ghost")).Reason)
	require.Equal(t, StatusApplied, raw("ann", "gm", 7, opSet("scrap", "note", String("x"))).Status)
	require.Equal(t, StatusApplied, raw("ann", "gm", 8, opDelete("scrap")).Status)
	require.Equal(t, StatusApplied, raw("ann", "gm", 9, opDelete("ghost")).Status)
	// An action without a role (auth off) and servers are not restricted.
	require.Equal(t, StatusApplied, raw("ann", "", 10, opIncr("ann", "hp", 1)).Status)
}

func TestWriteAccessWithoutActionsLeavesOtherFieldsOpen(t *testing.T) {
	h := newHarness(t)
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"hp":{"type":"int","policy":"counter","write":"server"}}}`), &r))
	h.createWorld("w", r)
	a := act("w", "ann", 1, opIncr("ann", "hp", 5))
	a.Role = RolePlayer
	require.Equal(t, CodeForbidden, h.event(a).Reason)
	a = act("w", "ann", 2, opSet("ann", "name", String("Ann")))
	a.Role = RolePlayer
	require.Equal(t, StatusApplied, h.event(a).Status, "no actions: players write undeclared and open fields as before")
}

func TestRulesWithBadExpressionsAreRefusedWhenSet(t *testing.T) {
	base := `{"fields":{"hp":{"type":"int","policy":"counter"}},"actions":{"a":{"params":{"n":"int"},%s}}}`
	for name, body := range map[string]string{
		"syntax":            `"pre":["params.n >"]`,
		"not bool":          `"pre":["params.n + 1"]`,
		"unknown variable":  `"pre":["params.m > 0"]`,
		"entity not string": `"effects":[{"op":"incr","entity":"params.n","field":"hp","value":"1"}]`,
		"value syntax":      `"effects":[{"op":"incr","entity":"'e'","field":"hp","value":"("}]`,
		"delete entity":     `"effects":[{"op":"delete","entity":"1"}]`,
		"policy refuses op": `"effects":[{"op":"set","entity":"'e'","field":"hp","value":"1"}]`,
		"map literal":       `"pre":["{'a': 1, 'b': 2}.size() == 2"]`,
		"time zone":         `"pre":["timestamp(now).getHours('Europe/Paris') > 3"]`,
		"too costly":        `"pre":["[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))"]`,
	} {
		var r Rules
		err := json.Unmarshal([]byte(fmtJSON(base, body)), &r)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

func fmtJSON(base, body string) string {
	return string(bytes.Replace([]byte(base), []byte("%s"), []byte(body), 1))
}

func TestPreconditionJSONFormsRoundTrip(t *testing.T) {
	var p []Precondition
	require.NoError(t, json.Unmarshal([]byte(`["true",{"name":"n","expr":"false"}]`), &p))
	require.Equal(t, []Precondition{{Expr: "true"}, {Name: "n", Expr: "false"}}, p)
	b, err := json.Marshal(p)
	require.NoError(t, err)
	require.JSONEq(t, `["true",{"name":"n","expr":"false"}]`, string(b))
	for _, bad := range []string{`[{"name":"n","expr":"true","x":1}]`, `[{"expr":"true"}]`, `[7]`} {
		require.ErrorIs(t, json.Unmarshal([]byte(bad), &p), ErrMalformed, bad)
	}
}

func TestLeaderTimeNeverGoesBackwardsPerWorld(t *testing.T) {
	h := arena(t)
	first := h.event(declared("ann", 1, "move", Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(0)}))
	// A new leader whose clock is behind: its batch's time is clamped to
	// the world's latest.
	h.time -= 5_000_000_000
	ev := h.event(act("a", "ann", 2, opSet("ann", "emote", String("x"))))
	require.Equal(t, first.Time, ev.Time)
	ev = h.event(declared("ann", 3, "move", Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(0)}))
	require.Equal(t, first.Time, ev.Time)
	require.Equal(t, Int(first.Time), h.field("a", "ann", "moved_at").Value, "now is clamped too")
	// The clock survives a snapshot (format 5 and later: the world
	// declares actions; 6: it has an incarnation).
	snap := h.snapshotBytes()
	require.Equal(t, byte(6), snap[len(snapMagic)-1])
	r := restored(t, snap)
	h2 := &harness{t: t, f: r, index: h.index, time: h.time}
	require.Equal(t, h.hash("a"), h2.hash("a"))
	require.Equal(t, first.Time, h2.event(act("a", "ann", 4, opSet("ann", "emote", String("y")))).Time)
}

func TestDeclaredActionsRoundTripTheLogAndAreGatedByLogVersion3(t *testing.T) {
	a := declared("ann", 1, "move", Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(-1)})
	b := &Batch{Time: 5, Commands: []Command{cmdAction(a)}}
	back, err := DecodeBatch(EncodeBatch(b))
	require.NoError(t, err)
	require.Equal(t, a, back.Commands[0].Action)
	require.Equal(t, Versions{Log: 3, Snapshot: 3, Wire: 1}, Needs(&b.Commands[0]))
	require.Equal(t, Versions{Log: 3, Snapshot: 5, Wire: 1}, Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: arenaRules(t)}}))
	require.Equal(t, Versions{Log: 3, Snapshot: 5, Wire: 1}, Needs(&Command{Kind: CmdUpdateRules, Rules: &RulesUpdate{Rules: arenaRules(t)}}))
	// Raw actions keep their bytes.
	raw := act("a", "ann", 1, opSet("ann", "emote", String("x")))
	require.Equal(t, EncodeAction(raw), EncodeAction(&Action{World: "a", Player: "ann", Seq: 1, Ops: raw.Ops, Params: []Param{}}))

	for name, p := range map[string][]byte{
		"declared flag, nothing": func() []byte {
			e := encoder{}
			e.str("a")
			e.str("ann")
			e.uvarint(1)
			e.varint(0)
			e.byte(actionDeclared)
			e.str("")
			e.uvarint(0)
			e.uvarint(0)
			return e.b
		}(),
		"role flag, no role": func() []byte {
			e := encoder{}
			e.str("a")
			e.str("ann")
			e.uvarint(1)
			e.varint(0)
			e.byte(actionRole)
			e.str("")
			e.uvarint(0)
			return e.b
		}(),
	} {
		d := decoder{b: p}
		d.action(1)
		require.ErrorIs(t, d.err, ErrMalformed, name)
	}
}

func TestRulesKeepTheCELVersionTheyWereWrittenWith(t *testing.T) {
	r := arenaRules(t)
	e := encoder{}
	e.rules(r)
	require.Contains(t, string(e.b), `"cel":"cel.dev/cel-go v0.33.3"`)
	// Rules another engine version wrote decode and re-encode as written,
	// so every replica hashes them alike.
	old := bytes.Replace(e.b, []byte("v0.33.3"), []byte("v0.32.0"), 1)
	d := decoder{b: old}
	back := d.rules()
	require.NoError(t, d.err)
	again := encoder{}
	again.rules(back)
	require.Equal(t, old, again.b)
	require.NoError(t, back.Validate())
	// A version without actions, or actions without one, is not canonical.
	for name, blob := range map[string]string{
		"version without actions": `{"cel":"x","roles":{"gm":{"raw":true}}}`,
		"actions without version": `{"actions":{"a":{}}}`,
	} {
		e := encoder{}
		e.byte(rulesSchema)
		e.uvarint(0)
		e.str(blob)
		d := decoder{b: e.b}
		d.rules()
		require.ErrorContains(t, d.err, "engine version", name)
	}
}

func TestBadActionShapesAreMalformed(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), MaxStringLen+1))
	many := make([]Param, maxSchemaItems+1)
	for i := range many {
		many[i] = Param{Name: string(rune('a'+i/26)) + string(rune('a'+i%26)), Value: Int(1)}
	}
	for name, a := range map[string]*Action{
		"bad role":        {World: "a", Player: "p", Seq: 1, Name: "n", Role: long},
		"bad name":        {World: "a", Player: "p", Seq: 1, Name: long},
		"too many params": {World: "a", Player: "p", Seq: 1, Name: "n", Params: many},
		"bad param name":  {World: "a", Player: "p", Seq: 1, Name: "n", Params: []Param{{Value: Int(1)}}},
		"unsorted params": {World: "a", Player: "p", Seq: 1, Name: "n", Params: []Param{{Name: "b", Value: Int(1)}, {Name: "a", Value: Int(1)}}},
		"null param":      {World: "a", Player: "p", Seq: 1, Name: "n", Params: []Param{{Name: "a"}}},
	} {
		require.ErrorIs(t, a.Validate(), ErrMalformed, name)
	}
}

func TestEffectsThatCannotBeComputedRejectAsActionFailed(t *testing.T) {
	h := newHarness(t)
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"hp":{"type":"int","policy":"counter"},"note":{"type":"string","policy":"authoritative"}},
	  "actions":{
	    "tag":  {"params":{"who":"string"},"pre":["!in_set(params.who, 'items', 'x')"],
	             "effects":[{"op":"set","entity":"string(field(params.who, 'owner'))","field":"note","value":"'tagged'"}]},
	    "poke": {"params":{"who":"string"},
	             "effects":[{"op":"incr","entity":"params.who","field":"hp","value":"field_or(params.who, 'note', 1)"}]}}}`), &r))
	h.createWorld("a", r)
	a := func(seq uint64, name string) *Action {
		x := declared("ann", seq, name, Param{Name: "who", Value: String("ann")})
		return x
	}
	require.Equal(t, CodeActionFailed, h.event(a(1, "tag")).Reason, "the entity's expression fails: no owner")
	require.Equal(t, StatusApplied, h.event(a(2, "poke")).Status, "no note: incr by 1")
	require.Equal(t, Int(1), h.field("a", "ann", "hp").Value)
	h.event(act("a", "ann", 3, opSet("ann", "note", String("n"))))
	require.Equal(t, CodeActionFailed, h.event(a(4, "poke")).Reason, "incr by a string")
}

func TestWriteAccessAloneNeedsLogVersion3(t *testing.T) {
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"hp":{"type":"int","policy":"counter","write":"owner"}}}`), &r))
	require.Equal(t, Versions{Log: 3, Snapshot: 5, Wire: 1}, Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: r}}))
	var v Rules
	require.NoError(t, json.Unmarshal([]byte(`{"fields":{"hp":{"type":"int","policy":"counter","visible":"all"}}}`), &v))
	require.Equal(t, Baseline(), Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: v}}))
}

func TestTheArenaOfTheRulesDocIsValidAndPlays(t *testing.T) {
	doc, err := os.ReadFile("../docs/RULES.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(doc), "#### Example: an arena")
	require.True(t, ok)
	_, rest, ok = strings.Cut(rest, "```json\n")
	require.True(t, ok)
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(block), &r))
	h := newHarness(t)
	h.createWorld("a", r)
	srv := act("a", "server", 1, opSet("ann", "x", Int(0)), opSet("ann", "y", Int(0)), opIncr("ann", "hp", 100))
	srv.Role = RoleServer
	require.Equal(t, StatusApplied, h.event(srv).Status)
	require.Equal(t, StatusApplied, h.event(declared("ann", 1, "move", Param{Name: "x", Value: Int(1)}, Param{Name: "y", Value: Int(0)})).Status)
	mallory := act("a", "mallory", 1, opIncr("ann", "hp", 999999))
	mallory.Role = RolePlayer
	require.Equal(t, CodeForbidden, h.event(mallory).Reason)
}

func TestRulesWireFormShowsActionsRolesAndWriteAccessAsTheirJSON(t *testing.T) {
	r := arenaRules(t)
	want, err := json.Marshal(r)
	require.NoError(t, err)
	got, err := json.Marshal(r.Wire())
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
	plain, err := json.Marshal(Rules{Fields: map[string]FieldRule{"hp": {Type: KindInt, Policy: PolicyCounter}}}.Wire())
	require.NoError(t, err)
	require.Equal(t, `{"strict":false,"fields":{"hp":{"type":"int","policy":"counter"}}}`, string(plain))
}
