package anticheat

import (
	"fmt"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// Check is one ready-made rule kind: the preconditions an action must pass
// and the effects that record what the check reads next time.
type Check interface {
	Pre() []fsm.Precondition
	Effects() []fsm.EffectRule
}

// Guard returns a copy of a with the checks' preconditions before its own
// (in the checks' order, so the first failing check names the rejection)
// and their effects after its own.
func Guard(a fsm.ActionRule, checks ...Check) fsm.ActionRule {
	var pre []fsm.Precondition
	effects := slices.Clone(a.Effects)
	for _, c := range checks {
		pre = append(pre, c.Pre()...)
		effects = append(effects, c.Effects()...)
	}
	a.Pre = append(pre, a.Pre...)
	a.Effects = effects
	return a
}

// caller is the default entity of a check: the acting player's own.
const caller = "caller.id"

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// q quotes a field name as a CEL string literal. Field names are checked
// names (1..128 bytes of UTF-8); %q's escapes are valid CEL.
func q(s string) string { return fmt.Sprintf("%q", s) }

// maxElapsed caps the time a speed check credits since the last move, so
// that a long rest cannot buy a teleport and the maths cannot overflow.
const maxElapsed = 10 * time.Second

// Speed limits movement on a grid: the squared distance from the entity's
// position (fields X and Y) to the destination (expressions ToX, ToY) must
// be at most (Slack + PerSecond × elapsed)², elapsed being the leader time
// since the last move (field At, set by the check's effect; capped at 10 s
// and 0 before the first move). With MaxStep > 0 no single move may be
// longer than MaxStep (a teleport), however long the rest.
type Speed struct {
	Entity    string // the moving entity; default caller.id
	X, Y, At  string // its position fields and last-move time field
	ToX, ToY  string // the destination, e.g. params.x
	PerSecond int64  // grid units per second
	Slack     int64  // grid units always allowed (rounding, jitter)
	MaxStep   int64  // longest single move; 0: no limit
	Name      string // reason code; default too_fast (teleport: "teleport")
}

// Pre returns the speed check and, with MaxStep, the teleport check.
// cel.bind reads each field once.
func (s Speed) Pre() []fsm.Precondition {
	e := or(s.Entity, caller)
	deltas := func(body string) string {
		return fmt.Sprintf("cel.bind(dx, (%s) - field(%s, %s), cel.bind(dy, (%s) - field(%s, %s), %s))",
			s.ToX, e, q(s.X), s.ToY, e, q(s.Y), body)
	}
	speed := fmt.Sprintf("cel.bind(el, now - field_or(%s, %s, 0), cel.bind(r, %d + %d * (el > %d ? %d : el) / %d, dx * dx + dy * dy <= r * r))",
		e, q(s.At), s.Slack, s.PerSecond, maxElapsed, maxElapsed, time.Second)
	pre := []fsm.Precondition{{Name: or(s.Name, "too_fast"), Expr: deltas(speed)}}
	if s.MaxStep > 0 {
		pre = append(pre, fsm.Precondition{Name: "teleport", Expr: deltas(fmt.Sprintf("dx * dx + dy * dy <= %d", s.MaxStep*s.MaxStep))})
	}
	return pre
}

// Effects stamps the move's leader time into At.
func (s Speed) Effects() []fsm.EffectRule {
	return []fsm.EffectRule{{Op: "set", Entity: or(s.Entity, caller), Field: s.At, Value: "now"}}
}

// Cooldown requires Period between two actions of the entity (field At
// holds the last one's leader time, set by the check's effect).
type Cooldown struct {
	Entity string // default caller.id
	At     string // last-use time field
	Period time.Duration
	Name   string // reason code; default cooldown
}

// FireRate is a Cooldown of one second divided by perSecond (> 0).
func FireRate(at string, perSecond int64) Cooldown {
	return Cooldown{At: at, Period: time.Second / time.Duration(perSecond), Name: "fire_rate"}
}

// Pre returns the cooldown check.
func (c Cooldown) Pre() []fsm.Precondition {
	return []fsm.Precondition{{Name: or(c.Name, "cooldown"),
		Expr: fmt.Sprintf("now - field_or(%s, %s, 0) >= %d", or(c.Entity, caller), q(c.At), c.Period)}}
}

// Effects stamps the action's leader time into At.
func (c Cooldown) Effects() []fsm.EffectRule {
	return []fsm.EffectRule{{Op: "set", Entity: or(c.Entity, caller), Field: c.At, Value: "now"}}
}

// Range requires the squared grid distance between two entities'
// positions (fields X and Y of each) to be at most Max².
type Range struct {
	From, To string // entity expressions; From defaults to caller.id
	X, Y     string
	Max      int64
	Name     string // reason code; default out_of_range
}

// Pre returns the range check.
func (r Range) Pre() []fsm.Precondition {
	f := or(r.From, caller)
	d := func(fl string) string {
		return fmt.Sprintf("(field(%s, %s) - field(%s, %s))", f, q(fl), r.To, q(fl))
	}
	return []fsm.Precondition{{Name: or(r.Name, "out_of_range"),
		Expr: fmt.Sprintf("%s * %s + %s * %s <= %d", d(r.X), d(r.X), d(r.Y), d(r.Y), r.Max*r.Max)}}
}

// Effects returns none: range reads positions others keep.
func (Range) Effects() []fsm.EffectRule { return nil }

// NonNegative requires a counter field to stay >= 0 after the action
// takes Amount (an int expression) from it: no negative balance, no
// spending what is not there.
type NonNegative struct {
	Entity, Field string // default entity caller.id
	Amount        string
	Name          string // reason code; default negative_balance
}

// Pre returns the balance check.
func (n NonNegative) Pre() []fsm.Precondition {
	return []fsm.Precondition{{Name: or(n.Name, "negative_balance"),
		Expr: fmt.Sprintf("(%s) >= 0 && field_or(%s, %s, 0) - (%s) >= 0", n.Amount, or(n.Entity, caller), q(n.Field), n.Amount)}}
}

// Effects returns none: the action's own effect takes the amount.
func (NonNegative) Effects() []fsm.EffectRule { return nil }

// Alive requires the entity's Field (hit points) to be > 0: no acting
// while dead.
type Alive struct {
	Entity, Field string // default entity caller.id
	Name          string // reason code; default dead
}

// Pre returns the check.
func (a Alive) Pre() []fsm.Precondition {
	return []fsm.Precondition{{Name: or(a.Name, "dead"), Expr: fmt.Sprintf("field_or(%s, %s, 0) > 0", or(a.Entity, caller), q(a.Field))}}
}

// Effects returns none.
func (Alive) Effects() []fsm.EffectRule { return nil }

// Owns requires the entity's set Field to hold Item (an expression): no
// using an item not owned.
type Owns struct {
	Entity, Field string // default entity caller.id
	Item          string
	Name          string // reason code; default not_owned
}

// Pre returns the check.
func (o Owns) Pre() []fsm.Precondition {
	return []fsm.Precondition{{Name: or(o.Name, "not_owned"), Expr: fmt.Sprintf("in_set(%s, %s, %s)", or(o.Entity, caller), q(o.Field), o.Item)}}
}

// Effects returns none.
func (Owns) Effects() []fsm.EffectRule { return nil }

// Rate allows at most Max actions of the entity per fixed window of
// leader time: field Start holds the window's start and Count the actions
// in it (both authoritative ints, set by the check's effects).
type Rate struct {
	Entity       string // default caller.id
	Start, Count string
	Window       time.Duration
	Max          int64
	Name         string // reason code; default rate
}

// expired is true when the entity's window has ended (or never began).
func (r Rate) expired() string {
	return fmt.Sprintf("now - field_or(%s, %s, 0) >= %d", or(r.Entity, caller), q(r.Start), r.Window)
}

// Pre returns the rate check.
func (r Rate) Pre() []fsm.Precondition {
	return []fsm.Precondition{{Name: or(r.Name, "rate"),
		Expr: fmt.Sprintf("%s || field_or(%s, %s, 0) < %d", r.expired(), or(r.Entity, caller), q(r.Count), r.Max)}}
}

// Effects start a new window when the last one has ended, and count the
// action in the current one.
func (r Rate) Effects() []fsm.EffectRule {
	e := or(r.Entity, caller)
	return []fsm.EffectRule{
		{Op: "set", Entity: e, Field: r.Count, Value: fmt.Sprintf("%s ? 1 : field_or(%s, %s, 0) + 1", r.expired(), e, q(r.Count))},
		{Op: "set", Entity: e, Field: r.Start, Value: fmt.Sprintf("%s ? now : field_or(%s, %s, 0)", r.expired(), e, q(r.Start))},
	}
}

// Transfer moves an item (an expression) from the entity's set Field to
// the set Field of To (an entity expression), after checking the entity
// owns it: items are conserved (removed where added) and never
// duplicated, and one not owned cannot be given.
type Transfer struct {
	Entity, To string // Entity defaults to caller.id
	Field      string
	Item       string
	Name       string // reason code; default not_owned
}

// Pre returns the ownership check.
func (t Transfer) Pre() []fsm.Precondition {
	return Owns{Entity: t.Entity, Field: t.Field, Item: t.Item, Name: t.Name}.Pre()
}

// Effects remove the item from the giver and add it to the receiver.
func (t Transfer) Effects() []fsm.EffectRule {
	return []fsm.EffectRule{
		{Op: "remove", Entity: or(t.Entity, caller), Field: t.Field, Value: t.Item},
		{Op: "add", Entity: t.To, Field: t.Field, Value: t.Item},
	}
}
