package anticheat

import (
	"fmt"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// arenaRules is the arena of docs/RULES.md built from the checks: move at
// 5 cells/s (1 cell of slack, at most 3 per move), attack within 3 cells
// at most twice a second while alive, buy with gold, use owned items.
func arenaRules() fsm.Rules {
	fields := map[string]fsm.FieldRule{
		"x": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative}, "y": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"moved_at": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative}, "shot_at": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"hp": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}, "gold": {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"items": {Type: fsm.KindString, Policy: fsm.PolicySet},
	}
	access := map[string]fsm.FieldAccess{}
	for n := range fields {
		access[n] = fsm.FieldAccess{Write: "server"}
	}
	alive := Alive{Field: "hp"}
	return fsm.Rules{Strict: true, Fields: fields, Schema: fsm.Schema{Access: access, Actions: map[string]fsm.ActionRule{
		"move": Guard(fsm.ActionRule{
			Params: map[string]string{"x": "int", "y": "int"},
			Effects: []fsm.EffectRule{
				{Op: "set", Entity: "caller.id", Field: "x", Value: "params.x"},
				{Op: "set", Entity: "caller.id", Field: "y", Value: "params.y"},
			},
		}, alive, Speed{X: "x", Y: "y", At: "moved_at", ToX: "params.x", ToY: "params.y", PerSecond: 5, Slack: 1, MaxStep: 3}),
		"attack": Guard(fsm.ActionRule{
			Params:  map[string]string{"target": "string"},
			Effects: []fsm.EffectRule{{Op: "incr", Entity: "params.target", Field: "hp", Value: "-10"}},
		}, alive, FireRate("shot_at", 2), Range{To: "params.target", X: "x", Y: "y", Max: 3}),
		"buy": Guard(fsm.ActionRule{
			Params: map[string]string{"item": "string", "price": "int"},
			Effects: []fsm.EffectRule{
				{Op: "incr", Entity: "caller.id", Field: "gold", Value: "-params.price"},
				{Op: "add", Entity: "caller.id", Field: "items", Value: "params.item"},
			},
		}, alive, NonNegative{Field: "gold", Amount: "params.price"}),
		"drink": Guard(fsm.ActionRule{
			Params:  map[string]string{"item": "string"},
			Effects: []fsm.EffectRule{{Op: "remove", Entity: "caller.id", Field: "items", Value: "params.item"}},
		}, Owns{Field: "items", Item: "params.item"}, Cooldown{At: "drank_at", Period: time.Minute, Name: "thirsty"}),
		"give": Guard(fsm.ActionRule{Params: map[string]string{"item": "string", "to": "string"}},
			alive, Transfer{To: "params.to", Field: "items", Item: "params.item"}),
		"chat": Guard(fsm.ActionRule{
			Params:  map[string]string{"text": "string"},
			Effects: []fsm.EffectRule{{Op: "set", Entity: "caller.id", Field: "said", Value: "params.text"}},
		}, Rate{Start: "chat_from", Count: "chats", Window: time.Second, Max: 2}),
	}}}
}

// world drives an fsm with the arena as the store would: one batch per
// call, the leader time given by the test.
type world struct {
	t     testing.TB
	f     *fsm.FSM
	index uint64
	seq   map[string]uint64
}

func newWorld(t testing.TB) *world {
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	w := &world{t: t, f: f, seq: map[string]uint64{}}
	r := arenaRules()
	for _, f := range []string{"drank_at", "chat_from", "chats"} {
		r.Fields[f] = fsm.FieldRule{Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative}
	}
	r.Fields["said"] = fsm.FieldRule{Type: fsm.KindString, Policy: fsm.PolicyAuthoritative}
	res := w.apply(0, fsm.Command{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: "arena", Rules: r}})
	require.NoError(t, res.Err)
	var ops []fsm.Op
	for i, p := range []string{"ann", "bob", "eve", "mal"} {
		ops = append(ops,
			fsm.Op{Kind: fsm.OpSet, Entity: p, Field: "x", Value: fsm.Int(int64(i))},
			fsm.Op{Kind: fsm.OpSet, Entity: p, Field: "y", Value: fsm.Int(0)},
			fsm.Op{Kind: fsm.OpIncr, Entity: p, Field: "hp", By: 100},
			fsm.Op{Kind: fsm.OpIncr, Entity: p, Field: "gold", By: 10})
	}
	require.Equal(t, fsm.StatusApplied, w.act(0, &fsm.Action{Player: "server", Role: fsm.RoleServer, Ops: ops}).Status)
	return w
}

func (w *world) apply(at time.Duration, c fsm.Command) fsm.Result {
	w.index++
	return w.f.ApplyBatch(w.index, &fsm.Batch{Time: int64(time.Hour + at), Commands: []fsm.Command{c}})[0]
}

func (w *world) act(at time.Duration, a *fsm.Action) *fsm.Event {
	w.t.Helper()
	w.seq[a.Player]++
	a.World, a.Seq = "arena", w.seq[a.Player]
	if a.Role == "" {
		a.Role = fsm.RolePlayer
	}
	r := w.apply(at, fsm.Command{Kind: fsm.CmdAction, Action: a})
	require.NoError(w.t, r.Err)
	return r.Event
}

func do(player, name string, params ...any) *fsm.Action {
	a := &fsm.Action{Player: player, Name: name}
	for i := 0; i < len(params); i += 2 {
		var v fsm.Value
		switch x := params[i+1].(type) {
		case int:
			v = fsm.Int(int64(x))
		case string:
			v = fsm.String(x)
		}
		a.Params = append(a.Params, fsm.Param{Name: params[i].(string), Value: v})
	}
	return a
}

func TestCheatsAreRejectedWithTheirRulesCodeAndHonestPlayersAreNot(t *testing.T) {
	w := newWorld(t)
	type step struct {
		at     time.Duration
		a      *fsm.Action
		reason string // "" applied
	}
	ms := time.Millisecond
	steps := []step{
		// Honest play, interleaved with the cheater's attempts.
		{100 * ms, do("ann", "move", "x", 1, "y", 1), ""},
		{100 * ms, do("mal", "move", "x", 3, "y", 4), "teleport"},
		{200 * ms, do("bob", "move", "x", 2, "y", 1), ""},
		{300 * ms, do("mal", "move", "x", 6, "y", 0), ""}, // 3 cells after a long rest
		{310 * ms, do("mal", "move", "x", 8, "y", 0), "too_fast"},
		{400 * ms, do("ann", "attack", "target", "bob"), ""},
		{450 * ms, do("ann", "attack", "target", "bob"), "fire_rate"},
		{500 * ms, do("mal", "attack", "target", "ann"), "out_of_range"},
		{1000 * ms, do("ann", "attack", "target", "bob"), ""},
		{1100 * ms, do("eve", "buy", "item", "potion", "price", 4), ""},
		{1200 * ms, do("mal", "buy", "item", "sword", "price", 11), "negative_balance"},
		{1210 * ms, do("mal", "buy", "item", "sword", "price", -5), "negative_balance"},
		{1300 * ms, do("mal", "drink", "item", "potion"), "not_owned"},
		{1350 * ms, do("eve", "give", "item", "potion", "to", "ann"), ""},
		{1360 * ms, do("eve", "give", "item", "potion", "to", "mal"), "not_owned"},
		{1370 * ms, do("ann", "give", "item", "potion", "to", "eve"), ""},
		{1400 * ms, do("eve", "drink", "item", "potion"), ""},
		{1500 * ms, do("eve", "buy", "item", "potion", "price", 4), ""},
		{1600 * ms, do("eve", "drink", "item", "potion"), "thirsty"},
		{1700 * ms, &fsm.Action{Player: "mal", Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "mal", Field: "gold", By: 1000}}}, fsm.CodeForbidden},
		{1800 * ms, &fsm.Action{Player: "srv", Role: fsm.RoleServer, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "mal", Field: "hp", By: -100}}}, ""},
		{1900 * ms, do("mal", "move", "x", 6, "y", 1), "dead"},
		{2000 * ms, do("ann", "chat", "text", "gg"), ""},
		{2100 * ms, do("ann", "chat", "text", "gg"), ""},
		{2200 * ms, do("ann", "chat", "text", "spam"), "rate"},
		{2900 * ms, do("ann", "chat", "text", "spam"), "rate"},
		{3000 * ms, do("ann", "chat", "text", "gg"), ""},
		{3100 * ms, do("bob", "chat", "text", "gg"), ""},
	}
	for i, s := range steps {
		ev := w.act(s.at, s.a)
		if s.reason == "" {
			require.Equal(t, fsm.StatusApplied, ev.Status, "step %d: %s rejected: %s", i, s.a.Name, ev.Reason)
			continue
		}
		require.Equal(t, fsm.StatusRejected, ev.Status, "step %d", i)
		require.Equal(t, s.reason, ev.Reason, "step %d", i)
	}
	bob, err := w.f.Entity("arena", "bob")
	require.NoError(t, err)
	for _, f := range bob.Fields {
		if f.Name == "hp" {
			require.Equal(t, fsm.Int(80), f.Value)
		}
	}
}

func TestEveryCheckCompilesAndDefaultsItsNames(t *testing.T) {
	require.NoError(t, arenaRules().Validate())
	for c, name := range map[Check]string{
		Speed{X: "x", Y: "y", At: "t", ToX: "1", ToY: "1"}:               "too_fast",
		Speed{X: "x", Y: "y", At: "t", ToX: "1", ToY: "1", Name: "slow"}: "slow",
		Cooldown{At: "t", Period: time.Second}:                           "cooldown",
		FireRate("t", 4):                                                 "fire_rate",
		Range{To: "'b'", X: "x", Y: "y", Max: 1}:                         "out_of_range",
		NonNegative{Field: "g", Amount: "1"}:                             "negative_balance",
		Alive{Field: "hp"}:                                               "dead",
		Owns{Field: "items", Item: "'a'"}:                                "not_owned",
	} {
		require.Equal(t, name, c.Pre()[0].Name)
	}
	require.Equal(t, 250*time.Millisecond, FireRate("t", 4).Period)
	require.Equal(t, "e", Alive{Entity: "e", Field: "hp"}.Pre()[0].Expr[9:10])
}

func BenchmarkDeclaredMove(b *testing.B) {
	benchMoves(b, func(i int) *fsm.Action { return do("ann", "move", "x", i%2, "y", 0) })
}

func BenchmarkRawMove(b *testing.B) {
	benchMoves(b, func(i int) *fsm.Action {
		return &fsm.Action{Player: "ann", Role: fsm.RoleServer, Ops: []fsm.Op{
			{Kind: fsm.OpSet, Entity: "ann", Field: "x", Value: fsm.Int(int64(i % 2))},
			{Kind: fsm.OpSet, Entity: "ann", Field: "y", Value: fsm.Int(0)},
			{Kind: fsm.OpSet, Entity: "ann", Field: "moved_at", Value: fsm.Int(int64(i))},
		}}
	})
}

// benchMoves applies one action per batch, a second of leader time apart,
// so every move passes its checks; the difference between the declared
// and the raw benchmark is the cost of the rules.
func benchMoves(b *testing.B, next func(i int) *fsm.Action) {
	w := newWorld(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := w.act(time.Duration(i+1)*time.Second, next(i))
		if ev.Status != fsm.StatusApplied {
			b.Fatalf("move %d: %s", i, ev.Reason)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), fmt.Sprintf("ns/%s", "action"))
}
