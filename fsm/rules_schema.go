package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/fsm/expr"
	"github.com/gsd-dev/gsd/wire"
)

// ErrNotSupported reports a feature this node does not have (a backend
// without backups or an archive, a route an older peer lacks). Rules keys
// once answered it until their issue built them; none does now.
var ErrNotSupported = errors.New("gsd/fsm: not supported yet")

// CodeNotSupported is ErrNotSupported's code.
const CodeNotSupported = "not_supported"

// Schema holds the keys of rules schema v1 (docs/RULES.md) beyond fields,
// strictness and fairness: authority (issue 12), spectators (13), shards'
// lifecycle (14) and player data (16). They are parsed, validated, stored,
// encoded and hashed with the rules. Defaults are zero values, so a Schema
// that is all defaults is the zero Schema and encodes to nothing.
type Schema struct {
	// Access is each declared field's write permission, visibility and
	// spectators' precision; in JSON it sits in the field's own object
	// ("write", "visible", "delay", "quantum").
	Access map[string]FieldAccess `json:"-"`
	// Actions are the world's declared actions by name (issue 12).
	Actions map[string]ActionRule `json:"actions,omitempty"`
	// Roles are the world's roles beyond player, server and admin, by name:
	// which declared actions each may invoke (issue 12).
	Roles map[string]RoleRule `json:"roles,omitempty"`
	// cel is the expression engine version recorded with decoded rules
	// that declare actions ("": this binary's, expr.CELVersion); kept so
	// the rules re-encode and hash as they were written.
	cel string
	// Teams says where a player's team comes from (issue 13).
	Teams TeamRule `json:"teams,omitzero"`
	// Viewers are the spectator classes by name (issue 13).
	Viewers map[string]ViewerRule `json:"viewers,omitempty"`
	// Views are the aggregated views by name (issue 13).
	Views map[string]ViewRule `json:"views,omitempty"`
	// Interest is the interest grid of the world's play connections
	// (issue 13; unset: the node flags --play-interest-*).
	Interest InterestRule `json:"interest,omitzero"`
	// IdleExpiry deletes the world after this long without an action
	// (issue 14); 0: never.
	IdleExpiry Duration `json:"idle_expiry,omitzero"`
	// Capacity bounds the world's players (issue 14); 0: unbounded.
	Capacity int `json:"capacity,omitempty"`
	// Mode is a free-form game mode a matchmaker filters on (issue 14).
	Mode string `json:"mode,omitempty"`
	// Labels are free-form key/values a matchmaker filters on (issue 14).
	Labels map[string]string `json:"labels,omitempty"`
	// PlayerData says which keys of their own critical data players may
	// write over play (issue 16).
	PlayerData PlayerDataRule `json:"player_data,omitzero"`
}

// PlayerDataRule is who writes players' critical data: game servers and
// admins write any key; a player writes their own data, and only the keys
// PlayerWritable names (none when empty).
type PlayerDataRule struct {
	PlayerWritable []string `json:"player_writable,omitempty"`
}

// playerWritable reports whether a player may write key of their own data.
func (r PlayerDataRule) playerWritable(key string) bool {
	return slices.Contains(r.PlayerWritable, key)
}

// FieldAccess is who may write a field and who may see it.
type FieldAccess struct {
	// Write is "" (anyone who may act, today's rule), "owner" (the
	// entity's owner) or "server" (game servers and admins only).
	Write string `json:"write,omitempty"`
	// Visible is "" (all), "owner", "team", "hidden" (nobody until an
	// effect reveals it) or "casters" (viewer classes, after Delay).
	Visible string `json:"visible,omitempty"`
	// Delay is how long after a change "casters" see it (0..MaxViewDelay).
	Delay Duration `json:"delay,omitzero"`
	// Quantum is the precision spectators get of a float field (log
	// version 16): their streams round its values to the nearest
	// multiple of it, and a move within it is not sent. 0: full
	// precision. Players and the event archive always get full precision.
	Quantum float64 `json:"quantum,omitempty"`
}

// ActionRule is a declared action (wire.ActionRule: clients send it in
// rules): typed parameters, preconditions that must all hold and effects,
// the op templates it applies. Preconditions and the effects' entity and
// value are CEL expressions over the parameters, the caller, the leader
// time and the state (authority.go, fsm/expr).
type ActionRule = wire.ActionRule

// Precondition is one check of an action (wire.Precondition).
type Precondition = wire.Precondition

// EffectRule is one op template of an action (wire.EffectRule).
type EffectRule = wire.EffectRule

// RoleRule is what a role may do beyond a player (wire.RoleRule).
type RoleRule = wire.RoleRule

// TeamRule says where a player's team comes from: From is "" (no teams),
// "claim" (the token claim named Key), "data" (the player's session data
// key Key) or "field" (the string field Key of the player's entity, what
// the node flag --play-interest-team names today).
type TeamRule struct {
	From string `json:"from,omitempty"`
	Key  string `json:"key,omitempty"`
}

// ViewerRule is a spectator class: its delay and the visibility classes it
// sees beyond "all" (owner, team, hidden, casters).
type ViewerRule struct {
	Delay Duration `json:"delay,omitzero"`
	Sees  []string `json:"sees,omitempty"`
}

// ViewRule is an aggregated view: Kind (sum, count, max, min, heatmap or
// feed) of Field, grouped By "" (the world), "team" or "player".
type ViewRule struct {
	Kind  string `json:"kind"`
	Field string `json:"field,omitempty"`
	By    string `json:"by,omitempty"`
}

// InterestRule is the interest grid: Cell size in position units (0: off),
// Radius in cells, and the numeric position fields X and Y.
type InterestRule struct {
	Cell   float64 `json:"cell,omitempty"`
	Radius int     `json:"radius,omitempty"`
	X      string  `json:"x,omitempty"`
	Y      string  `json:"y,omitempty"`
}

// Duration is a time.Duration written in JSON as a Go duration string.
type Duration time.Duration

// MarshalJSON writes the duration as a string ("1.5s").
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("%w: a duration is a string such as \"1.5s\"", ErrMalformed)
	}
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	*d = Duration(v)
	return nil
}

// Bounds of the schema's keys.
const (
	MaxViewDelay   = 300 * time.Second // spectator and caster delays
	maxSchemaItems = 256               // actions, roles, viewers, views, labels, params, pre, effects
	maxExprLen     = 4096              // one expression
	maxRuleExprs   = 2048              // all actions' expressions
	maxLabelLen    = 256               // one label value
	maxRadius      = 64                // interest radius in cells
)

// IsZero reports whether every key has its default.
func (s Schema) IsZero() bool {
	return len(s.Access) == 0 && len(s.Actions) == 0 && len(s.Roles) == 0 && s.Teams == (TeamRule{}) &&
		len(s.Viewers) == 0 && len(s.Views) == 0 && s.Interest == (InterestRule{}) &&
		s.IdleExpiry == 0 && s.Capacity == 0 && s.Mode == "" && len(s.Labels) == 0 && len(s.PlayerData.PlayerWritable) == 0
}

func oneOf(what, v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return fmt.Errorf("%w: %s %q is not one of %q", ErrMalformed, what, v, allowed)
	}
	return nil
}

func checkCount(what string, n int) error {
	if n > maxSchemaItems {
		return fmt.Errorf("%w: more than %d %s", ErrMalformed, maxSchemaItems, what)
	}
	return nil
}

func checkDelay(what string, d Duration) error {
	if d < 0 || time.Duration(d) > MaxViewDelay {
		return fmt.Errorf("%w: %s must be 0..%s", ErrMalformed, what, MaxViewDelay)
	}
	return nil
}

// checkQuantum checks field n's quantum: 0 (none), or a positive finite
// number on a float field that is not a set.
func checkQuantum(n string, q float64, f FieldRule) error {
	if q == 0 {
		return nil
	}
	if !(q > 0) || math.IsInf(q, 0) {
		return fmt.Errorf("%w: field %s: quantum must be a positive finite number", ErrMalformed, n)
	}
	if f.Type != KindFloat || f.Policy == PolicySet {
		return fmt.Errorf("%w: field %s: quantum needs a float field that is not a set (it is %s, %s)", ErrMalformed, n, f.Type, f.Policy)
	}
	return nil
}

func checkExpr(what, e string) error {
	if e == "" || len(e) > maxExprLen {
		return fmt.Errorf("%w: %s must be 1..%d bytes", ErrMalformed, what, maxExprLen)
	}
	return nil
}

// validate checks the keys' shapes: names, types, enumerations and
// bounds, in a fixed order so that the first error is deterministic.
// fields are the declared fields Access may name.
func (s Schema) validate(fields map[string]FieldRule) error {
	for _, n := range sortedKeys(s.Access) {
		a := s.Access[n]
		if _, ok := fields[n]; !ok {
			return fmt.Errorf("%w: access of undeclared field %q", ErrMalformed, n)
		}
		if a == (FieldAccess{}) {
			return fmt.Errorf("%w: field %s: empty access (defaults are left out)", ErrMalformed, n)
		}
		if err := oneOf("field "+n+" write", a.Write, "", "owner", "server"); err != nil {
			return err
		}
		if err := oneOf("field "+n+" visible", a.Visible, "", "owner", "team", "hidden", "casters"); err != nil {
			return err
		}
		if err := checkDelay("field "+n+" delay", a.Delay); err != nil {
			return err
		}
		if a.Delay != 0 && a.Visible != "casters" {
			return fmt.Errorf("%w: field %s: delay needs visible \"casters\"", ErrMalformed, n)
		}
		if err := checkQuantum(n, a.Quantum, fields[n]); err != nil {
			return err
		}
	}
	if err := s.validateActions(); err != nil {
		return err
	}
	if err := s.validateViews(); err != nil {
		return err
	}
	if err := oneOf("teams.from", s.Teams.From, "", "claim", "data", "field"); err != nil {
		return err
	}
	if (s.Teams.From == "") != (s.Teams.Key == "") {
		return fmt.Errorf("%w: teams needs both from and key", ErrMalformed)
	}
	in := s.Interest
	if in.Cell < 0 || math.IsNaN(in.Cell) || math.IsInf(in.Cell, 0) || in.Radius < 0 || in.Radius > maxRadius {
		return fmt.Errorf("%w: interest: cell must be finite and >= 0, radius 0..%d", ErrMalformed, maxRadius)
	}
	for _, f := range []string{in.X, in.Y} {
		if f != "" {
			if err := checkName("interest field", f); err != nil {
				return err
			}
		}
	}
	if in.Cell > 0 && (in.X == "" || in.Y == "") {
		return fmt.Errorf("%w: interest: a grid (cell > 0) needs its x and y fields", ErrMalformed)
	}
	if s.IdleExpiry < 0 || time.Duration(s.IdleExpiry) > MaxIdleExpiry || s.Capacity < 0 || len(s.Mode) > MaxNameLen {
		return fmt.Errorf("%w: idle_expiry must be 0..%s, capacity >= 0, mode at most %d bytes", ErrMalformed, MaxIdleExpiry, MaxNameLen)
	}
	if err := checkCount("labels", len(s.Labels)); err != nil {
		return err
	}
	for _, k := range sortedKeys(s.Labels) {
		if err := checkName("label", k); err != nil {
			return err
		}
		if len(s.Labels[k]) > maxLabelLen {
			return fmt.Errorf("%w: label %s: value longer than %d bytes", ErrMalformed, k, maxLabelLen)
		}
	}
	return s.PlayerData.validate()
}

// validate checks the player-writable keys: data key names, at most
// MaxSessionData, each once.
func (r PlayerDataRule) validate() error {
	if len(r.PlayerWritable) > MaxSessionData {
		return fmt.Errorf("%w: player_data.player_writable: more than %d keys", ErrMalformed, MaxSessionData)
	}
	for i, k := range r.PlayerWritable {
		if err := checkName("player_data.player_writable key", k); err != nil {
			return err
		}
		if slices.Contains(r.PlayerWritable[:i], k) {
			return fmt.Errorf("%w: player_data.player_writable: key %q listed twice", ErrMalformed, k)
		}
	}
	return nil
}

// validateActions checks actions and the roles that name them.
func (s Schema) validateActions() error {
	if err := checkCount("actions", len(s.Actions)); err != nil {
		return err
	}
	// Every replica compiles the expressions inside Apply (tens of
	// microseconds each): bound them all, not only per action.
	exprs := 0
	for _, a := range s.Actions {
		exprs += len(a.Pre) + 2*len(a.Effects)
	}
	if exprs > maxRuleExprs {
		return fmt.Errorf("%w: more than %d expressions in all actions", ErrMalformed, maxRuleExprs)
	}
	for _, n := range sortedKeys(s.Actions) {
		a := s.Actions[n]
		if err := checkName("action", n); err != nil {
			return err
		}
		if err := checkCount("params, preconditions or effects of action "+n, max(len(a.Params), len(a.Pre), len(a.Effects))); err != nil {
			return err
		}
		for _, p := range sortedKeys(a.Params) {
			if err := checkName("param", p); err != nil {
				return err
			}
			if err := oneOf("action "+n+" param "+p+" type", a.Params[p], "int", "float", "string", "bool"); err != nil {
				return err
			}
		}
		for _, p := range a.Pre {
			if err := checkExpr("action "+n+" precondition", p.Expr); err != nil {
				return err
			}
		}
		for _, e := range a.Effects {
			k, err := wire.ParseOpKind(e.Op)
			if err != nil {
				return fmt.Errorf("action %s effect: %w", n, err)
			}
			if err := checkExpr("action "+n+" effect entity", e.Entity); err != nil {
				return err
			}
			if (k == OpDelete) != (e.Field == "" && e.Value == "") {
				return fmt.Errorf("%w: action %s effect %s: delete takes no field and no value, the other ops both", ErrMalformed, n, e.Op)
			}
			if k != OpDelete {
				if err := checkName("effect field", e.Field); err != nil {
					return err
				}
				if err := checkExpr("action "+n+" effect value", e.Value); err != nil {
					return err
				}
			}
		}
	}
	if err := checkCount("roles", len(s.Roles)); err != nil {
		return err
	}
	for _, n := range sortedKeys(s.Roles) {
		if err := checkName("role", n); err != nil {
			return err
		}
		for _, a := range s.Roles[n].Actions {
			if _, ok := s.Actions[a]; !ok {
				return fmt.Errorf("%w: role %s names undeclared action %q", ErrMalformed, n, a)
			}
		}
	}
	return nil
}

// validateViews checks viewer classes and aggregated views.
func (s Schema) validateViews() error {
	if err := checkCount("viewers or views", max(len(s.Viewers), len(s.Views))); err != nil {
		return err
	}
	for _, n := range sortedKeys(s.Viewers) {
		v := s.Viewers[n]
		if err := checkName("viewer class", n); err != nil {
			return err
		}
		if err := checkDelay("viewer "+n+" delay", v.Delay); err != nil {
			return err
		}
		for _, c := range v.Sees {
			if err := oneOf("viewer "+n+" sees", c, "owner", "team", "hidden", "casters"); err != nil {
				return err
			}
		}
	}
	for _, n := range sortedKeys(s.Views) {
		v := s.Views[n]
		if err := checkName("view", n); err != nil {
			return err
		}
		if err := oneOf("view "+n+" kind", v.Kind, "sum", "count", "max", "min", "heatmap", "feed"); err != nil {
			return err
		}
		if err := oneOf("view "+n+" by", v.By, "", "team", "player"); err != nil {
			return err
		}
		if err := checkName("view "+n+" field", v.Field); err != nil {
			return err
		}
		// What package spectator cannot make is refused here, not when a
		// viewer joins: a heatmap counts entities per cell of the interest
		// grid, and neither it nor a feed is grouped.
		if v.Kind == "heatmap" && (s.Interest.Cell <= 0 || s.Interest.X == "" || s.Interest.Y == "") {
			return fmt.Errorf("%w: view %s: a heatmap needs the interest grid (cell, x, y)", ErrMalformed, n)
		}
		if (v.Kind == "heatmap" || v.Kind == "feed") && v.By != "" {
			return fmt.Errorf("%w: view %s: a %s has no by", ErrMalformed, n, v.Kind)
		}
	}
	return nil
}

// lifecycle reports whether s sets a key that issue 14 built (log version
// 6): capacity, idle_expiry, mode, labels.
func (s Schema) lifecycle() bool {
	return s.IdleExpiry != 0 || s.Capacity != 0 || s.Mode != "" || len(s.Labels) > 0
}

// Every key of the schema is built. Issue 12 built actions, roles and
// fields' write (log version 3); issue 14 capacity, idle_expiry, mode and
// labels (log version 6); issue 13 the visibility keys (log version 7),
// views and teams from a token claim (log version 10); issue 16
// player_data (log version 11); issue 13 the fields' quantum (log
// version 16). A new key is a log format change: a
// replica that does not know the key would apply the same entry
// differently, so its issue raises LogVersion and makes fsm.Needs ask for
// it wherever the key is set (the logN methods below).

// log16 reports whether s sets a key of issue 13 that a replica before log
// version 16 does not know: a field's quantum.
func (s Schema) log16() bool {
	return slices.ContainsFunc(sortedKeys(s.Access), func(n string) bool { return s.Access[n].Quantum != 0 })
}

// log11 reports whether s sets a key of issue 16 that a replica before log
// version 11 does not know: player_data.
func (s Schema) log11() bool { return len(s.PlayerData.PlayerWritable) > 0 }

// log10 reports whether s sets a key of issue 13 that a replica before log
// version 10 refuses: views, or teams from a token claim.
func (s Schema) log10() bool { return len(s.Views) > 0 || s.Teams.From == "claim" }

// visibility reports whether s sets a key of issue 13 that a replica
// before log version 7 refuses: a field's visible or delay, teams,
// viewers or interest.
func (s Schema) visibility() bool {
	return s.Teams != (TeamRule{}) || len(s.Viewers) > 0 || s.Interest != (InterestRule{}) ||
		slices.ContainsFunc(sortedKeys(s.Access), func(n string) bool { return s.Access[n].Visible != "" || s.Access[n].Delay != 0 })
}

// normal spells the defaults as the zero value: "write": "anyone" and
// "visible": "all" are today's behaviour, not a setting.
func (a FieldAccess) normal() FieldAccess {
	if a.Write == "anyone" {
		a.Write = ""
	}
	if a.Visible == "all" {
		a.Visible = ""
	}
	return a
}

// schemaBlob is the schema block of the binary rules encoding: the keys as
// canonical JSON (encoding/json sorts map keys), Access included. JSON keeps
// the block small to define while the features are not built; an issue
// that builds a key may give it a binary form under a new rules flag.
// CEL is the expression engine's version, recorded with rules that
// declare actions: the version of the binary that first encoded them,
// kept as it was. A binary evaluates them with its own engine; what
// keeps two engines from evaluating one log is the version gate (a
// cel-go upgrade raises the log version, expr's tests enforce it).
type schemaBlob struct {
	Access map[string]FieldAccess `json:"access,omitempty"`
	CEL    string                 `json:"cel,omitempty"`
	Schema
}

func (e *encoder) schema(s Schema) {
	b, err := json.Marshal(schemaBlob{Access: s.Access, CEL: s.celVersion(), Schema: s})
	if err != nil {
		// Every field is a string, number, bool, map or slice of those,
		// and a Duration's marshaller cannot fail.
		panic(fmt.Sprintf("gsd/fsm: encode rules schema: %v", err))
	}
	e.str(string(b))
}

func (d *decoder) schema() Schema {
	raw := d.rawBytes()
	var blob schemaBlob
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&blob); err != nil {
		d.fail("rules schema: %v", err)
		return Schema{}
	}
	blob.Schema.Access = blob.Access
	if (blob.CEL == "") != (len(blob.Actions) == 0) {
		d.fail("rules schema: an engine version goes with actions and only with them")
		return Schema{}
	}
	if blob.CEL != expr.CELVersion {
		blob.Schema.cel = blob.CEL // "" stands for this binary's
	}
	if b, _ := json.Marshal(blob); !bytes.Equal(b, raw) || blob.Schema.IsZero() {
		d.fail("rules schema not canonical") // one encoding per value
		return Schema{}
	}
	return blob.Schema
}

// celVersion is the engine version recorded with s: none without
// actions, the decoded one, or this binary's.
func (s Schema) celVersion() string {
	switch {
	case len(s.Actions) == 0:
		return ""
	case s.cel != "":
		return s.cel
	}
	return expr.CELVersion
}
