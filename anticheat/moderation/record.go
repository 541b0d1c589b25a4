package moderation

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// Errors of the package. ErrInvalid wraps fsm.ErrMalformed, so the edge
// answers it 400 malformed.
var (
	// ErrInvalid reports a record or a review that cannot be kept.
	ErrInvalid = fmt.Errorf("%w: moderation", fsm.ErrMalformed)
	// ErrIllegal reports a review transition the state machine refuses
	// (Next): answered 409 illegal_transition.
	ErrIllegal = errors.New("gsd/anticheat/moderation: illegal review transition")
	// ErrRace reports a review that lost to another review of the same
	// record committed since it was read: answered 409 review_conflict;
	// read the record again.
	ErrRace = errors.New("gsd/anticheat/moderation: the record changed since it was read")
	// ErrNotFound reports an id that names no record: it wraps
	// fsm.ErrNotFound (404 not_found).
	ErrNotFound = fmt.Errorf("%w: no such flag", fsm.ErrNotFound)
)

// Codes the edge answers ErrIllegal and ErrRace with.
const (
	CodeIllegal = "illegal_transition"
	CodeRace    = "review_conflict"
)

// Bounds of a record: they keep one record's action far below the log's
// limits (fsm.MaxOpsPerAction, fsm.MaxStringLen per value).
const (
	MaxPlayers  = 16
	MaxEvidence = 16
	MaxReason   = 1024
)

// Ref names one committed event, the evidence of a flag.
type Ref = wire.FlagRef

// Record is a flag as World keeps it: what a detector raised and how
// moderators reviewed it (wire.Flag is its form on the wire: Wire).
type Record struct {
	// ID is the record's entity in World (ID of the fields below).
	ID       string
	Detector string
	Players  []string
	Score    float64
	Evidence []Ref
	// World and Incarnation are where the suspicion was found: the world
	// of the flag's newest evidence and its incarnation then (0: unknown).
	World       string
	Incarnation uint64
	// RaisedBy names who recorded it (the node whose detectors raised it).
	RaisedBy string
	// Raised is the seq of World's event that recorded it: records sort
	// by it.
	Raised uint64
	// State is open, confirmed, dismissed or appealed (Next).
	State string
	// History lists the reviews, oldest first.
	History []Review

	// stateVersion is the version of the state field as read: a review
	// expects it, so that two concurrent reviews cannot both commit.
	stateVersion uint64
}

// FromFlag returns the record of f, found in world's incarnation inc,
// raised by by. Its World is the world of f's newest evidence.
func FromFlag(f detect.Flag, inc uint64, by string) Record {
	r := Record{Detector: f.Detector, Players: slices.Clone(f.Players), Score: f.Score, RaisedBy: by, State: StateOpen}
	for _, e := range f.Evidence {
		r.Evidence = append(r.Evidence, Ref{World: e.World, Seq: e.Seq})
	}
	if n := len(r.Evidence); n > 0 {
		r.World, r.Incarnation = r.Evidence[n-1].World, inc
	}
	r.ID = ID(r.Detector, r.Players, r.World, r.Incarnation)
	return r
}

// ID names the record of a suspicion: the same detector, players (in any
// order), world and incarnation give the same id on every node.
func ID(detector string, players []string, world string, inc uint64) string {
	h := sha256.New()
	for _, s := range append([]string{detector, world}, slices.Sorted(slices.Values(players))...) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], inc)
	h.Write(n[:])
	return "flag-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// Validate checks a record about to be raised.
func (r Record) Validate() error {
	var errs []error
	name := func(what, s string) {
		if s == "" || len(s) > fsm.MaxNameLen || !utf8.ValidString(s) {
			errs = append(errs, fmt.Errorf("%s must be 1..%d bytes of UTF-8", what, fsm.MaxNameLen))
		}
	}
	name("detector", r.Detector)
	name("raised_by", r.RaisedBy)
	if len(r.Players) == 0 || len(r.Players) > MaxPlayers {
		errs = append(errs, fmt.Errorf("a flag names 1..%d players, not %d", MaxPlayers, len(r.Players)))
	}
	for _, p := range r.Players {
		name("a player", p)
	}
	if len(r.Evidence) > MaxEvidence {
		errs = append(errs, fmt.Errorf("at most %d evidence refs, not %d", MaxEvidence, len(r.Evidence)))
	}
	for _, e := range r.Evidence {
		name("an evidence world", e.World)
	}
	if r.World != "" {
		name("world", r.World)
	}
	if math.IsNaN(r.Score) || math.IsInf(r.Score, 0) {
		errs = append(errs, fmt.Errorf("score %v is not a finite number", r.Score))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: flag: %w", ErrInvalid, err)
	}
	return nil
}

// RaiseAction returns the action that records r (validated) in World as
// writer's action seq: with expect "*" on its detector field, so it
// commits a conflict, changing nothing, when the record exists. Its role
// is server: World's fields are written by servers only.
func RaiseAction(r Record, writer string, seq uint64) (*fsm.Action, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	id := ID(r.Detector, r.Players, r.World, r.Incarnation)
	ev, _ := json.Marshal(r.Evidence) // a slice of plain structs: never fails
	set := func(field string, v fsm.Value) fsm.Op {
		return fsm.Op{Kind: fsm.OpSet, Entity: id, Field: field, Value: v}
	}
	ops := []fsm.Op{
		{Kind: fsm.OpSet, Entity: id, Field: FieldDetector, Value: fsm.String(r.Detector), Expect: fsm.Expect{Mode: fsm.ExpectAbsent}},
		set(FieldScore, fsm.Float(r.Score)),
		set(FieldEvidence, fsm.String(string(ev))),
		set(FieldWorld, fsm.String(r.World)),
		set(FieldIncarnation, fsm.Int(int64(r.Incarnation))),
		set(FieldRaisedBy, fsm.String(r.RaisedBy)),
		set(FieldState, fsm.String(StateOpen)),
		{Kind: fsm.OpAdd, Entity: IndexEntity, Field: FieldFlags, Value: fsm.String(id)},
	}
	for _, p := range r.Players {
		ops = append(ops, fsm.Op{Kind: fsm.OpAdd, Entity: id, Field: FieldPlayers, Value: fsm.String(p)})
	}
	a := &fsm.Action{World: World, Player: writer, Seq: seq, Ops: ops, Role: fsm.RoleServer}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return a, nil
}

// Wire returns r as the moderation routes answer it (no evidence and no
// history as empty lists, not null).
func (r Record) Wire() wire.Flag {
	return wire.Flag{ID: r.ID, Detector: r.Detector, Players: r.Players, Score: r.Score, Evidence: orEmpty(r.Evidence), World: r.World,
		Incarnation: r.Incarnation, RaisedBy: r.RaisedBy, Raised: r.Raised, State: r.State, History: orEmpty(r.History)}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// FromWire returns the record f raises (state open).
func FromWire(f wire.FlagRaise) Record {
	return Record{ID: ID(f.Detector, f.Players, f.World, f.Incarnation), Detector: f.Detector, Players: f.Players, Score: f.Score,
		Evidence: f.Evidence, World: f.World, Incarnation: f.Incarnation, RaisedBy: f.RaisedBy, State: StateOpen}
}

// Decode reads a record from its entity in World.
func Decode(v fsm.EntityView) (Record, error) {
	r := Record{ID: v.ID}
	for _, f := range v.Fields {
		var err error
		switch f.Name {
		case FieldDetector:
			r.Detector, r.Raised = f.Value.Str, f.Version
		case FieldPlayers:
			for _, p := range f.Set {
				r.Players = append(r.Players, p.Str)
			}
		case FieldScore:
			r.Score = f.Value.Float
		case FieldEvidence:
			err = json.Unmarshal([]byte(f.Value.Str), &r.Evidence)
		case FieldWorld:
			r.World = f.Value.Str
		case FieldIncarnation:
			r.Incarnation = uint64(f.Value.Int)
		case FieldRaisedBy:
			r.RaisedBy = f.Value.Str
		case FieldState:
			r.State, r.stateVersion = f.Value.Str, f.Version
		case FieldHistory:
			for _, e := range f.Set {
				var rv Review
				if err = json.Unmarshal([]byte(e.Str), &rv); err != nil {
					break
				}
				r.History = append(r.History, rv)
			}
		}
		if err != nil {
			return Record{}, fmt.Errorf("flag %s: field %s: %w", v.ID, f.Name, err)
		}
	}
	if r.Detector == "" || r.State == "" {
		return Record{}, fmt.Errorf("%w: entity %s of %s", ErrNotFound, v.ID, World)
	}
	slices.SortFunc(r.History, func(a, b Review) int { return a.N - b.N })
	return r, nil
}
