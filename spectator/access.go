package spectator

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// Visibility is who may see a field (rules key fields.<name>.visible).
type Visibility uint8

// The visibility classes of a field.
const (
	VisibleAll     Visibility = iota // everyone
	VisibleOwner                     // the entity's owner
	VisibleTeam                      // the owner and the owner's team
	VisibleHidden                    // nobody (but viewer classes that see "hidden")
	VisibleCasters                   // viewer classes that see "casters", after the field's delay
)

var visibilityNames = [...]string{"all", "owner", "team", "hidden", "casters"}

// String returns the visibility's name as written in rules.
func (v Visibility) String() string {
	if int(v) < len(visibilityNames) {
		return visibilityNames[v]
	}
	return fmt.Sprintf("visibility(%d)", v)
}

// ParseVisibility parses a visibility name; "" is "all".
func ParseVisibility(s string) (Visibility, error) {
	if s == "" {
		return VisibleAll, nil
	}
	for i, n := range visibilityNames {
		if n == s {
			return Visibility(i), nil
		}
	}
	return 0, fmt.Errorf("%w: visibility %q is not one of %q", ErrBadRules, s, visibilityNames)
}

// sees is a set of visibility classes, one bit each.
type sees uint8

func (s sees) has(v Visibility) bool { return s&(1<<v) != 0 }

// Viewer is who asks to watch: a viewer class of the world's rules
// (rules key viewers; "" is the public class, which sees only fields
// visible to all), the player it is ("" for a spectator), the team a
// spectator watches for ("" for none: a team's coach, say), and the delay
// it asks for, which may only raise its class's. A player's team is not
// taken from here: it follows the world's team source as the game goes
// (a player who changes team stops seeing its old team's fields at once).
// The edge fills Player and Team from the viewer's credential, never from
// what the client says; who may use a class is the edge's decision too.
type Viewer struct {
	Class  string
	Player string
	Team   string
	Delay  time.Duration
}

// View is what a viewer may see, the key views are shared by: viewers with
// equal Views get the same frames, made and encoded once.
type View struct {
	sees   sees
	player string
	team   string
}

// class is a viewer class: the visibility classes it sees beyond "all",
// and its delay.
type class struct {
	sees  sees
	delay time.Duration
}

// Access is a world's visibility rules, compiled: each field's visibility,
// where teams come from, and the viewer classes.
//
// An entity's owner is the player its string field "owner" names, or
// else the player whose id is the entity's id (the rule fsm's field write
// access uses); an entity's team is its own team field when teams come
// from a field and it has one, otherwise its owner's team. Entities and
// fields the rules do not declare are visible to all.
type Access struct {
	version     uint64                // the rules version (NewAccessAt); 0: unknown
	fields      map[string]Visibility // restricted fields only
	casterDelay time.Duration         // the longest delay of a "casters" field
	teams       fsm.TeamRule
	classes     map[string]class
	anyTeam     bool // some field is team-visible
	// quanta are the fields spectators get rounded (name → quantum,
	// quantise.go); restricted or not.
	quanta map[string]float64
}

// NewAccess compiles a world's rules. It checks what it relies on (the
// visibility names, delays, viewer classes) and returns ErrBadRules for
// rules it cannot enforce, so it never serves more than the rules allow.
func NewAccess(r fsm.Rules) (*Access, error) {
	a := &Access{fields: make(map[string]Visibility), classes: map[string]class{"": {}}, teams: r.Schema.Teams}
	for _, name := range sortedKeys(r.Schema.Access) {
		fa := r.Schema.Access[name]
		v, err := ParseVisibility(fa.Visible)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", name, err)
		}
		d := time.Duration(fa.Delay)
		if d < 0 || d > fsm.MaxViewDelay {
			return nil, fmt.Errorf("%w: field %s: delay must be 0..%s", ErrBadRules, name, fsm.MaxViewDelay)
		}
		if q := fa.Quantum; q != 0 {
			if !(q > 0) || math.IsInf(q, 0) {
				return nil, fmt.Errorf("%w: field %s: quantum must be a positive finite number", ErrBadRules, name)
			}
			if a.quanta == nil {
				a.quanta = make(map[string]float64)
			}
			a.quanta[name] = q
		}
		if v == VisibleAll {
			continue
		}
		a.fields[name] = v
		a.anyTeam = a.anyTeam || v == VisibleTeam
		if v == VisibleCasters {
			a.casterDelay = max(a.casterDelay, d)
		}
	}
	switch a.teams.From {
	case "", "claim", "data", "field":
	default:
		return nil, fmt.Errorf("%w: teams.from %q", ErrBadRules, a.teams.From)
	}
	if (a.teams.From == "") != (a.teams.Key == "") {
		return nil, fmt.Errorf("%w: teams needs both from and key", ErrBadRules)
	}
	for _, name := range sortedKeys(r.Schema.Viewers) {
		vr := r.Schema.Viewers[name]
		if name == "" {
			return nil, fmt.Errorf("%w: a viewer class needs a name", ErrBadRules)
		}
		d := time.Duration(vr.Delay)
		if d < 0 || d > fsm.MaxViewDelay {
			return nil, fmt.Errorf("%w: viewer %s: delay must be 0..%s", ErrBadRules, name, fsm.MaxViewDelay)
		}
		c := class{delay: d}
		for _, s := range vr.Sees {
			v, err := ParseVisibility(s)
			if err != nil {
				return nil, fmt.Errorf("viewer %s: %w", name, err)
			}
			c.sees |= 1 << v
		}
		a.classes[name] = c
	}
	return a, nil
}

// Restricted reports whether any field is hidden from someone; without
// such fields every viewer has the same view and filtering changes nothing.
func (a *Access) Restricted() bool { return len(a.fields) > 0 }

// Visibility returns a field's visibility.
func (a *Access) Visibility(field string) Visibility { return a.fields[field] }

// TeamField returns the field an entity's team is read from, or "" when
// teams do not come from a field.
func (a *Access) TeamField() string {
	if a.teams.From == "field" {
		return a.teams.Key
	}
	return ""
}

// DataTeam returns the key of players' session data that names their
// team, or "" when teams do not come from session data (teams.from
// "data", or "claim": the edge records a token's claim in the session
// data key of its name at the session's open): the edge's TeamFunc reads
// it.
func (a *Access) DataTeam() string {
	if a.teams.From == "data" || a.teams.From == "claim" {
		return a.teams.Key
	}
	return ""
}

// Classes returns the names of the world's viewer classes, sorted ("" is
// the public class).
func (a *Access) Classes() []string {
	out := make([]string, 0, len(a.classes))
	for n := range a.classes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Resolve returns the viewer's view and its delay: the largest of its
// class's delay, the delay it asked for, and, when its class sees "casters"
// fields, their longest delay (casters fields are only ever shown after
// their delay, so the whole view waits for them). A viewer may only raise
// the server's delay; one outside 0..fsm.MaxViewDelay gets ErrBadDelay, an
// unknown class ErrUnknownClass.
func (a *Access) Resolve(v Viewer) (View, time.Duration, error) {
	c, ok := a.classes[v.Class]
	if !ok {
		return View{}, 0, fmt.Errorf("%w: %q (the world declares %q)", ErrUnknownClass, v.Class, a.Classes())
	}
	if v.Delay < 0 || v.Delay > fsm.MaxViewDelay {
		return View{}, 0, fmt.Errorf("%w: %s is outside 0..%s", ErrBadDelay, v.Delay, fsm.MaxViewDelay)
	}
	d := max(c.delay, v.Delay)
	if c.sees.has(VisibleCasters) {
		d = max(d, a.casterDelay)
	}
	if !a.Restricted() {
		return View{}, d, nil // every view is the same
	}
	view := View{sees: c.sees, player: v.Player}
	if a.anyTeam && v.Player == "" {
		view.team = v.Team // a player's is bound as the game goes (bound)
	}
	return view, d, nil
}

// Player returns the player a view belongs to ("" for spectators).
func (v View) Player() string { return v.player }

// bound returns view with its player's team as s has it now: a
// player's team follows the world's team source; a spectator's is fixed.
// Every use of a view against a state binds it first.
func (a *Access) bound(view View, s *State, teamOf TeamFunc) View {
	if view.player != "" && a.anyTeam {
		view.team = s.who(a, teamOf, view.player).team
	}
	return view
}

// visible reports whether view may see field of an entity whose owner
// and team are w.
func (a *Access) visible(view View, field string, w who) bool {
	vis, ok := a.fields[field]
	if !ok {
		return true
	}
	if view.sees.has(vis) {
		return true
	}
	switch vis {
	case VisibleOwner:
		return view.player != "" && view.player == w.owner
	case VisibleTeam:
		return view.player != "" && view.player == w.owner || view.team != "" && view.team == w.team
	}
	return false
}

// mayShow reports whether view may see field on some entity: its
// visibility is all or a class the view sees, or it is owner- or
// team-visible and the view has a player or a team.
func (a *Access) mayShow(view View, field string) bool {
	vis, ok := a.fields[field]
	switch {
	case !ok || view.sees.has(vis):
		return true
	case vis == VisibleOwner:
		return view.player != ""
	case vis == VisibleTeam:
		return view.player != "" || view.team != ""
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
