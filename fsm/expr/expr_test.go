package expr

import (
	"os"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// state is a fixed world: entity → field → value (and a set).
type state map[string]map[string]wire.Value

func (s state) Field(e, f string) (wire.Value, uint64, bool) {
	v, ok := s[e][f]
	return v, 7, ok
}

func (s state) Contains(e, f string, v wire.Value) bool { return s[e][f+"[]"] == v }

func eval(t *testing.T, params map[string]string, src string, want Type, in *Input) (wire.Value, error) {
	t.Helper()
	p, err := NewEnv(params).Compile(src, want)
	require.NoError(t, err)
	require.Equal(t, src, p.String())
	return p.Eval(NewScope(in))
}

func TestExpressionsSeeParamsCallerTimeSeqAndState(t *testing.T) {
	st := state{"ann": {"hp": wire.Int(5), "name": wire.String("Ann"), "pos": wire.Float(1.5), "ok": wire.Bool(true), "items[]": wire.String("sword")}}
	params := map[string]string{"n": "int", "f": "float", "s": "string", "b": "bool"}
	in := &Input{
		Params: []Param{{"b", wire.Bool(true)}, {"f", wire.Float(2.5)}, {"n", wire.Int(3)}, {"s", wire.String("ann")}},
		Player: "ann", Role: "player", Now: 1000, Seq: 9, State: st,
	}
	for src, want := range map[string]wire.Value{
		"params.n + field(params.s, 'hp')":                    wire.Int(8),
		"params.f * 2.0":                                      wire.Float(5),
		"params.b && field('ann', 'ok')":                      wire.Bool(true),
		"caller.id + '/' + caller.role":                       wire.String("ann/player"),
		"now + seq":                                           wire.Int(1009),
		"field('ann', 'pos')":                                 wire.Float(1.5),
		"field('ann', 'name')":                                wire.String("Ann"),
		"field_or('bob', 'hp', 42)":                           wire.Int(42),
		"field_or('ann', 'hp', 42)":                           wire.Int(5),
		"has_field('ann', 'hp') && !has_field('ann', 'mp')":   wire.Bool(true),
		"version('ann', 'hp')":                                wire.Int(7),
		"in_set('ann', 'items', 'sword')":                     wire.Bool(true),
		"in_set('ann', 'items', [1])":                         wire.Bool(false),
		"abs(-4) + abs(4)":                                    wire.Int(8),
		"[3, 1, 2].exists(x, x == 2) && [1, 2].all(x, x > 0)": wire.Bool(true),
	} {
		got, err := eval(t, params, src, Any, in)
		require.NoError(t, err, src)
		require.Equal(t, want, got, src)
	}
}

func TestEvaluationErrorsAreErrors(t *testing.T) {
	in := &Input{State: state{"ann": {"n": {}}}}
	for _, src := range []string{
		"field('bob', 'hp')",            // missing field
		"abs(-9223372036854775807 - 1)", // abs overflow
		"9223372036854775807 + 1",       // int overflow
		"1.0 / 0.0",                     // non-finite
		"[1, 2]",                        // not a field value
		"field('ann', 'n')",             // null is not a field value
	} {
		_, err := eval(t, nil, src, Any, in)
		require.Error(t, err, src)
	}
	v, err := eval(t, nil, "field('ann', 'n') == null", Bool, in)
	require.NoError(t, err)
	require.Equal(t, wire.Bool(true), v)
}

func TestCompileRefusesWhatCouldDifferOrCostTooMuch(t *testing.T) {
	for src, want := range map[string]Type{
		"1 +":                                Any,
		"1 + 1":                              Bool,
		"true":                               String,
		"params.x > 0":                       Bool,
		"{'a': 1}.size() == 1":               Bool,
		"duration('1s') > duration('0s')":    Bool,
		"timestamp(now).getHours('UTC') > 1": Bool,
		"caller.id.matches(caller.id + caller.id + caller.id)": Bool,
		"[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))": Bool,
	} {
		_, err := NewEnv(nil).Compile(src, want)
		require.ErrorIs(t, err, ErrCompile, src)
	}
	_, err := NewEnv(map[string]string{"p": "list"}).Compile("true", Bool)
	require.ErrorIs(t, err, ErrCompile)
	require.ErrorContains(t, err, "unknown type")
}

func TestCostIsBoundedWhileEvaluating(t *testing.T) {
	// Estimated within the limit (field() costs 1, a string at most
	// maxStringLen), and evaluated within it.
	p, err := NewEnv(nil).Compile("field('a', 's').size() < 10", Bool)
	require.NoError(t, err)
	v, err := p.Eval(NewScope(&Input{State: state{"a": {"s": wire.String("abc")}}}))
	require.NoError(t, err)
	require.Equal(t, wire.Bool(true), v)
}

func TestActivationResolvesOnlyItsNames(t *testing.T) {
	a := NewScope(&Input{Params: []Param{{"n", wire.Int(1)}}})
	_, ok := a.ResolveName("params.m")
	require.False(t, ok)
	_, ok = a.ResolveName("other")
	require.False(t, ok)
	require.Nil(t, a.Parent())
}

// The state functions are bound to the Env, not resolved from the
// activation: each evaluation reads its own scope's state, whichever
// scope the Env's programs saw before.
func TestStateFunctionsReadTheEvaluatedScope(t *testing.T) {
	env := NewEnv(nil)
	p, err := env.Compile("field('a', 'n') + field_or('a', 'm', 0) + version('a', 'n') + (has_field('a', 'n') ? 1 : 0) + (in_set('a', 's', 'x') ? 1 : 0)", Any)
	require.NoError(t, err)
	q, err := env.Compile("field('a', 'n')", Any)
	require.NoError(t, err)
	one := NewScope(&Input{State: state{"a": {"n": wire.Int(1), "s[]": wire.String("x")}}})
	two := NewScope(&Input{State: state{"a": {"n": wire.Int(100), "m": wire.Int(10)}}})
	for range 2 {
		v, err := p.Eval(one)
		require.NoError(t, err)
		require.Equal(t, wire.Int(1+0+7+1+1), v)
		v, err = q.Eval(two)
		require.NoError(t, err)
		require.Equal(t, wire.Int(100), v)
		v, err = p.Eval(two)
		require.NoError(t, err)
		require.Equal(t, wire.Int(100+10+7+1+0), v)
	}
}

func TestCELVersionIsTheRequiredOne(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	required := ""
	for _, l := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "cel.dev/cel-go" {
			required = f[0] + " " + f[1]
		}
	}
	require.Equal(t, required, CELVersion, "bump CELVersion (and fsm's log version) with go.mod")
}

// A reused Scope sees each action's own caller, role, time, seq and
// params, whether they changed or not, and a copy of the Input: the
// caller may reuse its own afterwards.
func TestAResetScopeSeesTheNewActionOnly(t *testing.T) {
	p, err := NewEnv(map[string]string{"n": "int"}).Compile("caller.id + '/' + caller.role + '/' + string(now) + '/' + string(seq) + '/' + string(params.n)", String)
	require.NoError(t, err)
	in := &Input{Params: []Param{{"n", wire.Int(1)}}, Player: "ann", Role: "player", Now: 1000, Seq: 1, State: state{}}
	s := NewScope(in)
	for _, c := range []struct {
		player, role string
		now          int64
		seq          uint64
		n            int64
		want         string
	}{
		{"ann", "player", 1000, 1, 1, "ann/player/1000/1/1"},
		{"ann", "player", 1000, 2, 2, "ann/player/1000/2/2"},
		{"bob", "server", 2000, 3, 3, "bob/server/2000/3/3"},
		{"bob", "", 2000, 4, 4, "bob//2000/4/4"},
	} {
		*in = Input{Params: []Param{{"n", wire.Int(c.n)}}, Player: c.player, Role: c.role, Now: c.now, Seq: c.seq, State: state{}}
		s.Reset(in)
		in.Player, in.Params = "mallory", nil // the caller's, reused: the scope has its own copy
		v, err := p.Eval(s)
		require.NoError(t, err)
		require.Equal(t, wire.String(c.want), v)
	}
}
