package expr

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"github.com/gsd-dev/gsd/wire"
)

// CELVersion is the cel-go release this binary evaluates with. It is
// recorded with every world's rules (fsm's rules encoding) so that a
// change of the expression engine is a change of the rules' format, never
// a silent change of results: bump it with go.mod, and raise fsm's log
// version with it.
const CELVersion = "cel.dev/cel-go v0.33.3"

// MaxCost bounds one expression's evaluation in CEL cost units (about one
// per operation, more for string work by length). An expression whose
// static estimate may exceed it is refused when the rules are set. The
// estimate is an upper bound here: expressions see no lists or maps but
// their own literals, and every string is at most maxStringLen bytes. It
// is not tracked again while evaluating: cel-go's cost tracking made a
// declared move twice as expensive (measured: 14 us against 8 us).
const MaxCost = 10_000

// maxStringLen bounds every string an expression can see (field values,
// params): what the cost estimate assumes of a string of unknown length.
const maxStringLen = wire.MaxStringLen

// ErrCompile reports an expression that does not compile, has the wrong
// result type, uses a construct whose result could depend on more than
// its inputs, or may cost more than MaxCost.
var ErrCompile = errors.New("gsd/fsm/expr: bad expression")

// Type is the result type an expression must have.
type Type uint8

// The result types: a precondition is Bool, an effect's entity and field
// String, an effect's value Any scalar (the field's rule checks its type).
const (
	Bool Type = iota + 1
	String
	Any
)

// State is the read-only world state an expression reads, as of before
// the action.
type State interface {
	// Field returns a field's plain value (a counter's total) and version.
	Field(entity, field string) (wire.Value, uint64, bool)
	// Contains reports whether a set field holds v.
	Contains(entity, field string, v wire.Value) bool
}

// Param is one parameter's value; Input.Params is sorted by name.
type Param struct {
	Name  string
	Value wire.Value
}

// Input is what one evaluation sees.
type Input struct {
	Params []Param // sorted by name, as declared (type-checked by the caller)
	Player string  // caller.id
	Role   string  // caller.role
	Now    int64   // now: the batch's leader time (clamped), unix ns
	Seq    uint64  // seq: the world seq the action's event takes
	State  State
}

// Env compiles the expressions of one declared action: its parameters are
// variables params.<name> of their declared types.
//
// The state functions are bound when the Env is built, to the scope of
// the evaluation under way (cur), not resolved per call from the
// activation: cel-go's late binding allocates an argument slice and a
// closure on every call (12 of a declared move's 28 allocations). So the
// Programs of one Env must not be evaluated concurrently; fsm evaluates
// them only in Apply, which holds the FSM exclusively.
type Env struct {
	params map[string]string
	env    *cel.Env
	cur    *Scope // the scope of the evaluation under way
}

// The late-bound functions that read the state.
const (
	fnField   = "field"
	fnFieldOr = "field_or"
	fnHas     = "has_field"
	fnVersion = "version"
	fnInSet   = "in_set"
)

// NewEnv returns the environment of an action with these params (name →
// int, float, string or bool). It is built on the first Compile, which
// reports an unknown param type.
func NewEnv(params map[string]string) *Env { return &Env{params: params} }

func (e *Env) build() error {
	opts := []cel.EnvOption{
		cel.Variable("caller.id", cel.StringType),
		cel.Variable("caller.role", cel.StringType),
		cel.Variable("now", cel.IntType),
		cel.Variable("seq", cel.IntType),
		cel.Function(fnField, cel.Overload("field_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.DynType, cel.BinaryBinding(func(a, b ref.Val) ref.Val { return e.cur.field(a, b) }))),
		cel.Function(fnFieldOr, cel.Overload("field_or_string_string_dyn", []*cel.Type{cel.StringType, cel.StringType, cel.DynType}, cel.DynType, cel.FunctionBinding(func(args ...ref.Val) ref.Val { return e.cur.fieldOr(args[0], args[1], args[2]) }))),
		cel.Function(fnHas, cel.Overload("has_field_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType, cel.BinaryBinding(func(a, b ref.Val) ref.Val { return e.cur.has(a, b) }))),
		cel.Function(fnVersion, cel.Overload("version_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.IntType, cel.BinaryBinding(func(a, b ref.Val) ref.Val { return e.cur.version(a, b) }))),
		cel.Function(fnInSet, cel.Overload("in_set_string_string_dyn", []*cel.Type{cel.StringType, cel.StringType, cel.DynType}, cel.BoolType, cel.FunctionBinding(func(args ...ref.Val) ref.Val { return e.cur.inSet(args[0], args[1], args[2]) }))),
		cel.Function("abs", cel.Overload("abs_int", []*cel.Type{cel.IntType}, cel.IntType, cel.UnaryBinding(absInt))),
		ext.Bindings(), // cel.bind(name, init, expr): a local, evaluated once
	}
	for _, n := range sortedKeys(e.params) {
		t, ok := paramTypes[e.params[n]]
		if !ok {
			return fmt.Errorf("%w: param %s: unknown type %q", ErrCompile, n, e.params[n])
		}
		opts = append(opts, cel.Variable("params."+n, t))
	}
	env, err := cel.NewEnv(opts...)
	e.env = env
	return err // the declarations above are valid: only a cel-go bug fails
}

var paramTypes = map[string]*cel.Type{"int": cel.IntType, "float": cel.DoubleType, "string": cel.StringType, "bool": cel.BoolType}

// absInt is abs(int): an error for MinInt64, whose absolute value int64
// cannot hold, like CEL's own overflow.
func absInt(v ref.Val) ref.Val {
	n := int64(v.(types.Int))
	if n == math.MinInt64 {
		return types.NewErr("abs overflow")
	}
	return types.Int(max(n, -n))
}

// denied are the standard functions whose result could depend on the
// machine (time zones) rather than only on the inputs; the leader time is
// an int of unix nanoseconds, so games compute with ints.
var denied = []string{
	"timestamp", "duration", "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek",
	"getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
}

// Program is one compiled expression. It must not be evaluated while
// another Program of its Env is (see Env).
type Program struct {
	src string
	env *Env
	prg cel.Program
}

// String returns the expression's source.
func (p *Program) String() string { return p.src }

// Compile compiles src, which must have type want, and refuses it unless
// its result depends only on its inputs (no map literals: CEL iterates
// maps in Go's random order; no time-zone functions) and its estimated
// cost is at most MaxCost.
func (e *Env) Compile(src string, want Type) (*Program, error) {
	if e.env == nil {
		if err := e.build(); err != nil {
			return nil, err
		}
	}
	a, iss := e.env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrCompile, src, iss.Err())
	}
	switch out := a.OutputType(); {
	case want == Bool && !out.IsExactType(cel.BoolType), want == String && !out.IsExactType(cel.StringType):
		return nil, fmt.Errorf("%w: %q has type %s, want %s", ErrCompile, src, out, map[Type]string{Bool: "bool", String: "string"}[want])
	}
	if err := deterministic(a.NativeRep().Expr()); err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrCompile, src, err)
	}
	// Neither EstimateCost nor Program fails on a checked AST today; their
	// errors share the cost's answer.
	est, err := e.env.EstimateCost(a, estimator{})
	if err == nil && est.Max > MaxCost {
		err = fmt.Errorf("may cost %d, more than the limit %d", est.Max, MaxCost)
	}
	var prg cel.Program
	if err == nil {
		prg, err = e.env.Program(a, cel.EvalOptions(cel.OptOptimize))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrCompile, src, err)
	}
	return &Program{src: src, env: e, prg: prg}, nil
}

// deterministic refuses map literals and the denied functions.
func deterministic(root ast.Expr) error {
	var err error
	ast.PreOrderVisit(root, ast.NewExprVisitor(func(x ast.Expr) {
		switch {
		case err != nil:
		case x.Kind() == ast.MapKind:
			err = errors.New("map literals are not allowed (maps iterate in no fixed order)")
		case x.Kind() == ast.CallKind && slices.Contains(denied, x.AsCall().FunctionName()):
			err = fmt.Errorf("%s is not allowed (time zones differ between machines; now is unix nanoseconds)", x.AsCall().FunctionName())
		}
	}))
	return err
}

// estimator bounds what the static cost estimate cannot know: every
// string is at most maxStringLen bytes, and a state lookup costs 1.
type estimator struct{}

func (estimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if n.Type().IsExactType(cel.StringType) || n.Type().IsExactType(cel.DynType) {
		return &cost.SizeEstimate{Min: 0, Max: maxStringLen}
	}
	return nil
}

func (estimator) EstimateCallCost(fn, _ string, _ *cost.AstNode, _ []cost.AstNode) *cost.CallEstimate {
	switch fn {
	case fnField, fnFieldOr, fnHas, fnVersion, fnInSet:
		return &cost.CallEstimate{CostEstimate: cost.Estimate{Min: 1, Max: 1}}
	}
	return nil
}

// Eval evaluates the program in scope s. The result is a scalar
// wire.Value; an evaluation error (a missing field, an overflow, a wrong
// type) is an error.
func (p *Program) Eval(s *Scope) (wire.Value, error) {
	p.env.cur = s
	out, _, err := p.prg.Eval(s)
	p.env.cur = nil // a scope is not kept past its evaluation
	if err != nil {
		return wire.Value{}, fmt.Errorf("%s: %w", p.src, err)
	}
	return toValue(out)
}

// toValue converts a CEL result to a field value.
func toValue(v ref.Val) (wire.Value, error) {
	switch x := v.(type) {
	case types.Int:
		return wire.Int(int64(x)), nil
	case types.Double:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return wire.Value{}, errors.New("non-finite float")
		}
		return wire.Float(float64(x)), nil
	case types.String:
		return wire.String(string(x)), nil
	case types.Bool:
		return wire.Bool(bool(x)), nil
	}
	return wire.Value{}, fmt.Errorf("result of type %s is not a field value", v.Type().TypeName())
}

// toCEL converts a field value for an expression; null stays null.
func toCEL(v wire.Value) ref.Val {
	switch v.Kind {
	case wire.KindInt:
		return types.Int(v.Int)
	case wire.KindFloat:
		return types.Double(v.Float)
	case wire.KindString:
		return types.String(v.Str)
	case wire.KindBool:
		return types.Bool(v.Int != 0)
	}
	return types.NullValue
}

// Scope is one action's evaluation context, shared by all its
// expressions: the variables converted once, so an evaluation resolves
// names without allocating (the state functions reach it through the
// Env, see Env). A Scope may
// be Reset for the next action (Apply keeps one), but not while one of
// its evaluations runs.
type Scope struct {
	in                     *Input // &input
	input                  Input  // a copy: the caller's Input need not outlive Reset
	player, role, now, seq ref.Val
	params                 []ref.Val
}

// NewScope returns the scope of in.
func NewScope(in *Input) *Scope {
	s := &Scope{}
	s.Reset(in)
	return s
}

// Reset makes s the scope of in, reusing its memory: the caller, the
// role and the time are converted again only when they differ from the
// previous action's (a batch's actions share its time, a player's moves
// their caller), as each conversion allocates.
func (s *Scope) Reset(in *Input) {
	s.input = *in
	s.in = &s.input
	if p, ok := s.player.(types.String); !ok || string(p) != in.Player {
		s.player = types.String(in.Player)
	}
	if r, ok := s.role.(types.String); !ok || string(r) != in.Role {
		s.role = types.String(in.Role)
	}
	if n, ok := s.now.(types.Int); !ok || int64(n) != in.Now {
		s.now = types.Int(in.Now)
	}
	s.seq = types.Int(int64(in.Seq))
	s.params = s.params[:0]
	for _, p := range in.Params {
		s.params = append(s.params, toCEL(p.Value))
	}
}

// ResolveName implements cel.Activation.
func (s *Scope) ResolveName(name string) (any, bool) {
	switch name {
	case "caller.id":
		return s.player, true
	case "caller.role":
		return s.role, true
	case "now":
		return s.now, true
	case "seq":
		return s.seq, true
	}
	n, ok := strings.CutPrefix(name, "params.")
	if !ok {
		return nil, false
	}
	i, ok := slices.BinarySearchFunc(s.in.Params, n, func(p Param, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return nil, false
	}
	return s.params[i], true
}

// Parent implements cel.Activation: a scope has none.
func (s *Scope) Parent() cel.Activation { return nil }

// The state functions; the checker has typed their first two arguments
// as strings.
func strs(e, f ref.Val) (string, string) {
	return string(e.(types.String)), string(f.(types.String))
}

func (a *Scope) field(ev, fv ref.Val) ref.Val {
	e, f := strs(ev, fv)
	v, _, ok := a.in.State.Field(e, f)
	if !ok {
		return types.NewErr("no field %s of entity %s", f, e)
	}
	return toCEL(v)
}

func (a *Scope) fieldOr(ev, fv, or ref.Val) ref.Val {
	if v, _, ok := a.in.State.Field(strs(ev, fv)); ok {
		return toCEL(v)
	}
	return or
}

func (a *Scope) has(ev, fv ref.Val) ref.Val {
	_, _, ok := a.in.State.Field(strs(ev, fv))
	return types.Bool(ok)
}

func (a *Scope) version(ev, fv ref.Val) ref.Val {
	_, v, _ := a.in.State.Field(strs(ev, fv))
	return types.Int(int64(v))
}

func (a *Scope) inSet(ev, fv, x ref.Val) ref.Val {
	e, f := strs(ev, fv)
	v, err := toValue(x)
	if err != nil {
		return types.Bool(false)
	}
	return types.Bool(a.in.State.Contains(e, f, v))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
