package registry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// World is the registry's world: gsd creates it with Rules on the first
// registration.
const World = "gsd.relays"

// IndexEntity is the entity of World whose FieldRelays lists every
// relay's id: the store reads entities by id only.
const IndexEntity = "index"

// The fields of a relay's record (every one hidden, written by servers).
const (
	FieldURL       = "url"
	FieldRegion    = "region"
	FieldWorlds    = "worlds" // a JSON list; empty: every world
	FieldCapacity  = "capacity"
	FieldViewers   = "viewers"
	FieldHeartbeat = "heartbeat" // unix milliseconds; 0: a static record
	// FieldRelays is the index entity's set of relay ids.
	FieldRelays = "relays"
)

// Bounds of a record.
const (
	MaxIDLen   = 64
	MaxURLLen  = 512
	MaxRegion  = 64
	MaxWorlds  = 256
	MaxWorldID = 128
)

// DefaultStaleAfter is how long a registered relay's heartbeat counts:
// past it, the relay is stale (listed as such, never picked).
const DefaultStaleAfter = 30 * time.Second

// Errors of the package. ErrInvalid wraps fsm.ErrMalformed (400
// malformed); ErrNotFound wraps fsm.ErrNotFound (404 not_found).
var (
	// ErrInvalid reports a record that cannot be kept.
	ErrInvalid = fmt.Errorf("%w: relay registry", fsm.ErrMalformed)
	// ErrNotFound reports an id that names no relay.
	ErrNotFound = fmt.Errorf("%w: no such relay", fsm.ErrNotFound)
	// ErrNotRegistry reports a world named World whose rules are not
	// Rules(): created by someone else, its records could be visible to
	// players, so gsd writes nothing there.
	ErrNotRegistry = errors.New("gsd/spectator/registry: the registry world has other rules")
)

var fields = map[string]fsm.FieldRule{
	FieldURL:       {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	FieldRegion:    {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	FieldWorlds:    {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	FieldCapacity:  {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
	FieldViewers:   {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
	FieldHeartbeat: {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
	FieldRelays:    {Type: fsm.KindString, Policy: fsm.PolicySet},
}

// Rules returns World's rules: strict, every field hidden from players
// and the public and written only by servers and admins.
func Rules() fsm.Rules { return fsm.RecordRules(fields) }

// CheckWorld returns nil when wi, a world named World, has World's rules
// (compared in their JSON form), else ErrNotRegistry.
func CheckWorld(wi fsm.WorldInfo) error {
	got, _ := wi.Rules.MarshalJSON() // rules that do not encode are not these
	want, _ := Rules().MarshalJSON()
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s", ErrNotRegistry, got)
	}
	return nil
}

// Relay is one relay's record.
type Relay struct {
	ID     string
	URL    string // where viewers reach it
	Region string
	Worlds []string // served; empty: every world
	// Capacity is the viewers it takes (0: not said); Viewers those it
	// serves (as it last said).
	Capacity, Viewers int
	// Heartbeat is when a relay that registers itself last said it lives;
	// zero for a record an operator added, which never goes stale.
	Heartbeat time.Time
}

// Validate reports a record that cannot be kept.
func (r Relay) Validate() error {
	u, err := url.Parse(r.URL)
	switch {
	case !validID(r.ID, MaxIDLen):
		return fmt.Errorf("%w: id %q: want 1 to %d of A-Z a-z 0-9 . _ -", ErrInvalid, r.ID, MaxIDLen)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(r.URL) > MaxURLLen:
		return fmt.Errorf("%w: url %q: want an http(s) URL of at most %d bytes", ErrInvalid, r.URL, MaxURLLen)
	case len(r.Region) > MaxRegion:
		return fmt.Errorf("%w: region longer than %d bytes", ErrInvalid, MaxRegion)
	case len(r.Worlds) > MaxWorlds:
		return fmt.Errorf("%w: more than %d worlds", ErrInvalid, MaxWorlds)
	case r.Capacity < 0 || r.Viewers < 0:
		return fmt.Errorf("%w: capacity and viewers must not be negative", ErrInvalid)
	}
	for _, w := range r.Worlds {
		if !validID(w, MaxWorldID) {
			return fmt.Errorf("%w: world %q", ErrInvalid, w)
		}
	}
	return nil
}

// validID reports whether s is 1 to n bytes of A-Z a-z 0-9 . _ -.
func validID(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Serves reports whether r serves world.
func (r Relay) Serves(world string) bool {
	return len(r.Worlds) == 0 || slices.Contains(r.Worlds, world)
}

// Stale reports whether r registered itself and its last heartbeat is
// older than after at now.
func (r Relay) Stale(now time.Time, after time.Duration) bool {
	return !r.Heartbeat.IsZero() && now.Sub(r.Heartbeat) > after
}

// load is the share of r's capacity in use (its viewers when it said no
// capacity, after every relay that did).
func (r Relay) load() float64 {
	if r.Capacity == 0 {
		return 1 + float64(r.Viewers)
	}
	return float64(r.Viewers) / float64(r.Capacity)
}

// full reports whether r said its capacity and serves that many.
func (r Relay) full() bool { return r.Capacity > 0 && r.Viewers >= r.Capacity }

// Pick returns the relays a viewer of world should use, least loaded
// first: those that serve it, are not stale at now and are not full.
func Pick(relays []Relay, world string, now time.Time, staleAfter time.Duration) []Relay {
	var out []Relay
	for _, r := range relays {
		if r.Serves(world) && !r.Stale(now, staleAfter) && !r.full() {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Relay) int {
		return cmp.Or(cmp.Compare(a.load(), b.load()), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// PutAction is writer's action seq that records r (replacing a record of
// the same id).
func PutAction(r Relay, writer string, seq uint64) (*fsm.Action, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	worlds, _ := json.Marshal(r.Worlds) // strings: never fails
	if r.Worlds == nil {
		worlds = []byte("[]")
	}
	var hb int64
	if !r.Heartbeat.IsZero() {
		hb = r.Heartbeat.UnixMilli()
	}
	set := func(field string, v fsm.Value) fsm.Op {
		return fsm.Op{Kind: fsm.OpSet, Entity: r.ID, Field: field, Value: v}
	}
	a := &fsm.Action{World: World, Player: writer, Seq: seq, Role: fsm.RoleServer, Ops: []fsm.Op{
		set(FieldURL, fsm.String(r.URL)),
		set(FieldRegion, fsm.String(r.Region)),
		set(FieldWorlds, fsm.String(string(worlds))),
		set(FieldCapacity, fsm.Int(int64(r.Capacity))),
		set(FieldViewers, fsm.Int(int64(r.Viewers))),
		set(FieldHeartbeat, fsm.Int(hb)),
		{Kind: fsm.OpAdd, Entity: IndexEntity, Field: FieldRelays, Value: fsm.String(r.ID)},
	}}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return a, nil
}

// RemoveAction is writer's action seq that removes relay id's record.
func RemoveAction(id, writer string, seq uint64) (*fsm.Action, error) {
	if !validID(id, MaxIDLen) {
		return nil, fmt.Errorf("%w: id %q", ErrInvalid, id)
	}
	a := &fsm.Action{World: World, Player: writer, Seq: seq, Role: fsm.RoleServer, Ops: []fsm.Op{
		{Kind: fsm.OpDelete, Entity: id},
		{Kind: fsm.OpRemove, Entity: IndexEntity, Field: FieldRelays, Value: fsm.String(id)},
	}}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return a, nil
}

// Decode reads a relay's record from its entity.
func Decode(v fsm.EntityView) (Relay, error) {
	r := Relay{ID: v.ID}
	seen := false
	for _, f := range v.Fields {
		switch f.Name {
		case FieldURL:
			r.URL, seen = f.Value.Str, true
		case FieldRegion:
			r.Region = f.Value.Str
		case FieldWorlds:
			if err := json.Unmarshal([]byte(f.Value.Str), &r.Worlds); err != nil {
				return Relay{}, fmt.Errorf("relay %s: field %s: %w", v.ID, f.Name, err)
			}
			if len(r.Worlds) == 0 {
				r.Worlds = nil
			}
		case FieldCapacity:
			r.Capacity = int(f.Value.Int)
		case FieldViewers:
			r.Viewers = int(f.Value.Int)
		case FieldHeartbeat:
			if f.Value.Int > 0 {
				r.Heartbeat = time.UnixMilli(f.Value.Int)
			}
		}
	}
	if !seen {
		return Relay{}, fmt.Errorf("%w: entity %s of %s", ErrNotFound, v.ID, World)
	}
	return r, nil
}

// Group runs actions and creates worlds on the registry world's leader.
type Group interface {
	Act(ctx context.Context, a *fsm.Action) (ev *fsm.Event, dup bool, err error)
	CreateWorld(ctx context.Context, id string, rules fsm.Rules) error
}

// Worlds is this node's view of its worlds.
type Worlds interface {
	World(id string) (fsm.WorldInfo, error)
}

// Put records r on g as writer's action seq, creating World first when
// it does not exist; ws is the view of g's node. A World of other rules
// (CheckWorld) gets nothing.
func Put(ctx context.Context, g Group, ws Worlds, r Relay, writer string, seq uint64) error {
	a, err := PutAction(r, writer, seq)
	if err != nil {
		return err
	}
	wi, err := ws.World(World)
	if errors.Is(err, fsm.ErrUnknownWorld) {
		if err = g.CreateWorld(ctx, World, Rules()); err == nil || errors.Is(err, fsm.ErrWorldExists) {
			wi, err = ws.World(World)
		}
	}
	return act(ctx, g, wi, err, a, "register relay "+r.ID)
}

// Remove removes relay id's record on g as writer's action seq (a relay
// not registered stays so); without World, ErrNotFound.
func Remove(ctx context.Context, g Group, ws Worlds, id, writer string, seq uint64) error {
	a, err := RemoveAction(id, writer, seq)
	if err != nil {
		return err
	}
	wi, err := ws.World(World)
	if errors.Is(err, fsm.ErrUnknownWorld) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return act(ctx, g, wi, err, a, "remove relay "+id)
}

// act runs a on g when the registry world (wi, err) is the right one.
func act(ctx context.Context, g Group, wi fsm.WorldInfo, err error, a *fsm.Action, what string) error {
	if err == nil {
		err = CheckWorld(wi)
	}
	var ev *fsm.Event
	if err == nil {
		ev, _, err = g.Act(ctx, a)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if ev.Status != fsm.StatusApplied {
		return fmt.Errorf("%w: %s: %s: %s", ErrInvalid, what, ev.Status, ev.Reason)
	}
	return nil
}
