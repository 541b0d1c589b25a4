package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
)

// The field policies' names in world rules (FieldRule.Policy).
const (
	PolicyAuthoritative = "authoritative"
	PolicyCounter       = "counter"
	PolicySet           = "set"
	PolicyMax           = "max"
	PolicyMin           = "min"
)

// FieldRule declares one field in Rules: its value type (a Kind's name;
// for sets, the element type) and its policy's name. An empty type is the
// policy's natural one (int for counters, string otherwise).
type FieldRule struct {
	Type   string `json:"type"`
	Policy string `json:"policy"`
	Write  string `json:"write,omitempty"` // "", "owner" or "server" (docs/RULES.md)
}

// Rules are a world's declared fields as they travel: in a create request
// and in world listings. fsm.Rules parses and validates them.
type Rules struct {
	Strict     bool                  `json:"strict"`
	FairWindow string                `json:"fair_window,omitempty"`
	MaxLag     string                `json:"max_lag_compensation,omitempty"`
	Fields     map[string]FieldRule  `json:"fields,omitempty"`
	Actions    map[string]ActionRule `json:"actions,omitempty"`
	Roles      map[string]RoleRule   `json:"roles,omitempty"`
	// The world's lifecycle keys (issue 14, docs/RULES.md): at most
	// Capacity sessions (0: unbounded), deleted after IdleExpiry (a Go
	// duration) without a session or an action, and the Mode and Labels
	// a matchmaker filters the world listing on.
	Capacity   int               `json:"capacity,omitempty"`
	IdleExpiry string            `json:"idle_expiry,omitempty"`
	Mode       string            `json:"mode,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// PlayerData names the keys of their own critical data players may
	// write over play (log version 11; docs/RULES.md). Nil: none.
	PlayerData *PlayerDataRule `json:"player_data,omitempty"`
}

// PlayerDataRule is Rules' player_data key.
type PlayerDataRule struct {
	PlayerWritable []string `json:"player_writable,omitempty"`
}

// Check reports what the rules' wire form cannot mean: an unknown policy or
// type name, a duration that does not parse. The server validates the rest
// (fsm.Rules: types a policy accepts, bounds); Check lets a tool refuse a
// typo before it sends anything.
func (r Rules) Check() error {
	for _, d := range []struct{ name, s string }{{"fair_window", r.FairWindow}, {"max_lag_compensation", r.MaxLag}} {
		if d.s == "" {
			continue
		}
		if _, err := time.ParseDuration(d.s); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformed, d.name, err)
		}
	}
	names := make([]string, 0, len(r.Fields))
	for n := range r.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := r.Fields[n]
		if !slices.Contains(policyNames, f.Policy) {
			return fmt.Errorf("field %q: %w: unknown policy %q", n, ErrMalformed, f.Policy)
		}
		if f.Type == "" {
			continue
		}
		if _, err := ParseKind(f.Type); err != nil {
			return fmt.Errorf("field %q: %w", n, err)
		}
	}
	return nil
}

var policyNames = []string{PolicyAuthoritative, PolicyCounter, PolicySet, PolicyMax, PolicyMin}

// CreateWorld is the body of POST /v1/worlds.
type CreateWorld struct {
	ID    string `json:"id"`
	Rules Rules  `json:"rules"`
	// AuditLeaf 2 salts the world's audit leaves per player
	// (docs/ANTICHEAT.md); 0: version 1.
	AuditLeaf int `json:"audit_leaf,omitempty"`
}

// RulesUpdate is the body of PUT /v1/worlds/{world}/rules: the world's new
// rules, as JSON (docs/RULES.md), and, when set, the rules version the
// update replaces (another update first makes it 409 rules_conflict).
type RulesUpdate struct {
	Rules              json.RawMessage `json:"rules"`
	ExpectRulesVersion uint64          `json:"expect_rules_version,omitempty"`
}

// RulesVersion answers a rules update: the world's new rules version.
type RulesVersion struct {
	World        string `json:"world"`
	RulesVersion uint64 `json:"rules_version"`
}

// World summarises a world (GET /v1/worlds).
type World struct {
	ID       string `json:"id"`
	Origin   string `json:"origin,omitempty"`
	Seq      uint64 `json:"seq"`
	Index    uint64 `json:"index"`
	Entities int    `json:"entities"`
	Players  int    `json:"players"`
	// Hash is absent in a world whose rules restrict fields, for a
	// caller who may not see everything (it covers hidden values).
	Hash  Hash  `json:"hash,omitempty"`
	Rules Rules `json:"rules"`
	// RulesVersion is 1 at creation and rises with each rules update.
	RulesVersion uint64 `json:"rules_version"`
	// Incarnation is the log index of the world's creation: a world
	// deleted and created again under the same id has a new one, and its
	// seqs start over, so (id, incarnation, seq) names one event for good
	// (0: created before incarnations).
	Incarnation uint64 `json:"incarnation"`
	// Sessions is how many players' sessions the world holds: what its
	// rules' capacity bounds and the listing's player filters count.
	Sessions int `json:"sessions"`
	// AuditLeaf is 2 for a world whose audit leaves are salted per player
	// (docs/ANTICHEAT.md); absent: version 1.
	AuditLeaf int `json:"audit_leaf,omitempty"`
}

// Worlds answers GET /v1/worlds: a page of worlds sorted by id; Next, when
// set, is the cursor of the next page.
type Worlds struct {
	Worlds []World `json:"worlds"`
	Next   string  `json:"next,omitempty"`
}

// HashPoint is a node's state hash of a world after the event with seq Seq
// (GET /v1/worlds/{world}/hash).
type HashPoint struct {
	World string `json:"world"`
	Seq   uint64 `json:"seq"`
	Index uint64 `json:"index"`
	Hash  Hash   `json:"hash"`
}

// Hash is a state hash as 16 hex digits. It decodes from a JSON string or a
// JSON number, so a client does not depend on the server's choice.
type Hash string

// HashString formats a hash as 16 hex digits.
func HashString(h uint64) string {
	s := strconv.FormatUint(h, 16)
	for len(s) < 16 {
		s = "0" + s
	}
	return s
}

// UnmarshalJSON accepts "00ab..." or a number.
func (h *Hash) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*h = Hash(s)
		return nil
	}
	if string(b) == "null" {
		*h = ""
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	*h = Hash(HashString(n))
	return nil
}

// Entity is one entity as read (GET /v1/worlds/{world}/entities/{id}):
// field values (plain JSON: numbers, strings, bools, arrays for set fields)
// and each field's version.
type Entity struct {
	ID       string            `json:"id"`
	Version  uint64            `json:"version"`
	Seq      uint64            `json:"seq"` // the world seq the read reflects
	Fields   map[string]any    `json:"fields"`
	Versions map[string]uint64 `json:"versions"`
}

// Int returns a numeric field as an int64.
func (e Entity) Int(field string) (int64, bool) {
	switch v := e.Fields[field].(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case float64:
		return int64(v), float64(int64(v)) == v
	case int64:
		return v, true
	}
	return 0, false
}
