package fsm

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gsd-dev/gsd/fsm/expr"
	"github.com/gsd-dev/gsd/wire"
)

// Who may do what (docs/RULES.md): a world's rules declare actions, roles
// and who may write a field; Apply enforces them on every replica from
// the role the action carries in the log, so a faulty edge or leader
// cannot make a forbidden write count.

// Errors of declared actions and roles; Code maps them like the others.
var (
	// ErrUnknownAction reports an action name the world's rules do not declare.
	ErrUnknownAction = errors.New("gsd/fsm: unknown action")
	// ErrForbidden reports a write or an action the caller's role may not make.
	ErrForbidden = errors.New("gsd/fsm: forbidden")
	// ErrActionFailed reports a declared action whose effects could not be
	// computed (an expression's error, a value of the wrong kind).
	ErrActionFailed = errors.New("gsd/fsm: action failed")
)

// Codes of the authority errors. A failing precondition's code is its name.
const (
	CodeUnknownAction = "unknown_action"
	CodeForbidden     = wire.CodeForbidden
	CodeActionFailed  = "action_failed"
)

// The built-in roles: an action's Role is one of them, a role of the
// world's rules, or "" (not given: the edge had no token, or the action
// was logged before roles; such an action is not restricted, as before).
const (
	RolePlayer = "player"
	RoleServer = "server"
	RoleAdmin  = "admin"
)

// Param is one parameter of a declared action.
type Param = expr.Param

// authority is a world's rules about who may do what, with its actions'
// expressions compiled: built once per rules version (createWorld,
// updateRules, Restore) and shared read-only after, also by snapshots and
// Check. nil when the rules declare no action, role or write access.
type authority struct {
	actions map[string]*action
	roles   map[string]RoleRule
	write   map[string]string // field → "owner" or "server"
}

// action is one compiled declared action.
type action struct {
	params  []paramDecl // sorted by name
	floats  bool        // a param is a float (an int is taken for it)
	pre     []pre
	effects []effect
	roles   []string // the rules' roles that name it; none: every player may
}

type paramDecl struct {
	name string
	kind Kind
}

type pre struct {
	name string
	prg  *expr.Program
}

type effect struct {
	kind   OpKind
	entity *expr.Program
	field  string
	value  *expr.Program // nil for delete
}

var paramKinds = map[string]Kind{"int": KindInt, "float": KindFloat, "string": KindString, "bool": KindBool}

// compileAuthority compiles the rules' actions (ErrMalformed for one that
// does not compile, may cost too much, or writes a declared field with an
// op its policy refuses) and gathers roles and write access.
func compileAuthority(r Rules) (*authority, error) {
	s := r.Schema
	au := &authority{actions: make(map[string]*action, len(s.Actions)), roles: s.Roles, write: make(map[string]string)}
	for _, n := range sortedKeys(s.Access) {
		if w := s.Access[n].Write; w != "" {
			au.write[n] = w
		}
	}
	if len(s.Actions) == 0 && len(s.Roles) == 0 && len(au.write) == 0 {
		return nil, nil
	}
	for _, n := range sortedKeys(s.Actions) {
		ca, err := compileAction(n, s.Actions[n], r.Fields)
		if err != nil {
			return nil, fmt.Errorf("%w: action %s: %v", ErrMalformed, n, err)
		}
		au.actions[n] = ca
	}
	for _, rn := range sortedKeys(s.Roles) {
		for _, an := range s.Roles[rn].Actions {
			if ca := au.actions[an]; !slices.Contains(ca.roles, rn) {
				ca.roles = append(ca.roles, rn)
			}
		}
	}
	return au, nil
}

func compileAction(name string, ar ActionRule, fields map[string]FieldRule) (*action, error) {
	env := expr.NewEnv(ar.Params)
	ca := &action{}
	for _, p := range sortedKeys(ar.Params) {
		ca.params = append(ca.params, paramDecl{name: p, kind: paramKinds[ar.Params[p]]})
		ca.floats = ca.floats || ar.Params[p] == "float"
	}
	for i, p := range ar.Pre {
		prg, err := env.Compile(p.Expr, expr.Bool)
		if err != nil {
			return nil, err
		}
		n := p.Name
		if n == "" {
			n = fmt.Sprintf("%s.pre%d", name, i)
		}
		ca.pre = append(ca.pre, pre{name: n, prg: prg})
	}
	for _, e := range ar.Effects {
		k, _ := wire.ParseOpKind(e.Op) // Schema.validate checked it
		ce := effect{kind: k, field: e.Field}
		var err error
		if ce.entity, err = env.Compile(e.Entity, expr.String); err != nil {
			return nil, err
		}
		if k == OpDelete {
			ca.effects = append(ca.effects, ce)
			continue
		}
		if fr, ok := fields[e.Field]; ok && !fr.Policy.accepts(k) {
			return nil, fmt.Errorf("effect %s on %s field %s", k, fr.Policy, e.Field)
		}
		if ce.value, err = env.Compile(e.Value, expr.Any); err != nil {
			return nil, err
		}
		ca.effects = append(ca.effects, ce)
	}
	return ca, nil
}

// authority reports whether s sets a key of issue 12: actions, roles or a
// field's write access (log version 3).
func (s Schema) authority() bool {
	return len(s.Actions) > 0 || len(s.Roles) > 0 ||
		slices.ContainsFunc(sortedKeys(s.Access), func(n string) bool { return s.Access[n].Write != "" })
}

// unrestricted reports whether role may send raw ops and invoke every
// action whatever the rules say: game servers, admins, and actions that
// carry no role.
func unrestricted(role string) bool {
	return role == "" || role == RoleServer || role == RoleAdmin
}

// lookup returns the declared action a invokes, after checking that a's
// role may invoke it and that its params are the declared ones, each of
// its type (an int is accepted where a float is declared).
func (au *authority) lookup(a *Action) (*action, error) {
	var ca *action
	if au != nil {
		ca = au.actions[a.Name]
	}
	if ca == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAction, a.Name)
	}
	if !unrestricted(a.Role) && len(ca.roles) > 0 && !slices.Contains(ca.roles, a.Role) {
		return nil, fmt.Errorf("%w: role %q may not invoke %s", ErrForbidden, a.Role, a.Name)
	}
	if len(a.Params) != len(ca.params) {
		return nil, fmt.Errorf("%w: action %s takes %d params, got %d", ErrMalformed, a.Name, len(ca.params), len(a.Params))
	}
	for i, p := range ca.params {
		got := a.Params[i]
		if got.Name != p.name {
			return nil, fmt.Errorf("%w: action %s: missing param %s", ErrMalformed, a.Name, p.name)
		}
		if got.Value.Kind != p.kind && (p.kind != KindFloat || got.Value.Kind != KindInt) {
			return nil, fmt.Errorf("%w: action %s: param %s must be %s", ErrTypeMismatch, a.Name, p.name, p.kind)
		}
	}
	return ca, nil
}

// expand evaluates a's preconditions in order and, when all hold, its
// effects into ops. It returns the ops, or the reason code of the
// rejection: the failing precondition's name, or action_failed.
//
// sc is scratch reused across actions (Apply holds the FSM exclusively).
func (ca *action) expand(w *world, a *Action, now int64, sc *expr.Scope) ([]Op, string) {
	in := &expr.Input{Params: a.Params, Player: a.Player, Role: a.Role, Now: now, Seq: w.seq, State: worldView{w}}
	if ca.floats {
		in.Params = slices.Clone(a.Params) // a is the log's: never mutated
		for i := range in.Params {
			if v := in.Params[i].Value; v.Kind == KindInt && ca.params[i].kind == KindFloat {
				in.Params[i].Value = Float(float64(v.Int))
			}
		}
	}
	sc.Reset(in)
	for _, p := range ca.pre {
		v, err := p.prg.Eval(sc)
		if err != nil || v.Int == 0 {
			return nil, p.name // false, or an error such as a missing field: the check fails
		}
	}
	ops := make([]Op, 0, len(ca.effects))
	for _, e := range ca.effects {
		op, err := e.eval(sc)
		if err == nil {
			err = validateOp(&op)
		}
		if err != nil {
			return nil, CodeActionFailed
		}
		ops = append(ops, op)
	}
	return ops, ""
}

func (e *effect) eval(sc *expr.Scope) (Op, error) {
	ent, err := e.entity.Eval(sc)
	if err != nil {
		return Op{}, err
	}
	// The entity compiled as a string expression: ent is a string.
	op := Op{Kind: e.kind, Entity: ent.Str, Field: e.field}
	if e.value == nil {
		return op, nil
	}
	v, err := e.value.Eval(sc)
	if err != nil {
		return Op{}, err
	}
	if e.kind == OpIncr {
		if v.Kind != KindInt {
			return Op{}, fmt.Errorf("%w: incr by %s is not an int", ErrActionFailed, e.value)
		}
		op.By = v.Int
		return op, nil
	}
	op.Value = v
	return op, nil
}

// checkRaw refuses a raw op the caller's role may not send. Servers,
// admins and actions without a role may send any. Others (players, the
// rules' roles, unknown roles as players) write a field declared
// "server" never, one declared "owner" only on an entity they own, and
// any other only when their role is raw or the world declares no action
// (a world that declares actions is played through them). A delete needs
// every field of its entity writable.
func (au *authority) checkRaw(w *world, a *Action) error {
	if au == nil || unrestricted(a.Role) {
		return nil
	}
	raw := len(au.actions) == 0
	if a.Role != RolePlayer {
		raw = raw || au.roles[a.Role].Raw
	}
	may := func(entity, field string) bool {
		switch au.write[field] {
		case "server":
			return false
		case "owner":
			return owns(w, entity, a.Player)
		}
		return raw
	}
	for i := range a.Ops {
		o := &a.Ops[i]
		if o.Kind != OpDelete {
			if !may(o.Entity, o.Field) {
				return fmt.Errorf("%w: role %q may not write field %s of entity %s", ErrForbidden, a.Role, o.Field, o.Entity)
			}
			continue
		}
		if e := w.entities[o.Entity]; e != nil {
			for _, fl := range e.fields {
				if !may(o.Entity, fl.name) {
					return fmt.Errorf("%w: role %q may not delete entity %s (field %s)", ErrForbidden, a.Role, o.Entity, fl.name)
				}
			}
		} else if !raw {
			return fmt.Errorf("%w: role %q may not delete entity %s", ErrForbidden, a.Role, o.Entity)
		}
	}
	return nil
}

// owns reports whether player owns the entity: its id is the player's, or
// its string field "owner" names the player.
func owns(w *world, entity, player string) bool {
	if entity == player {
		return true
	}
	v, _, ok := worldView{w}.Field(entity, "owner")
	return ok && v.Kind == KindString && v.Str == player
}
