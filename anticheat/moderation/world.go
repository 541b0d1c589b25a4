package moderation

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// World is the moderation world's id: gsd creates it with Rules on the
// first flag it records.
const World = "gsd.moderation"

// Class is the moderators' viewer class in World's rules, and the token
// role (claim gsd_role) of a moderator: the review routes take a token of
// this role (or an admin's), and a public read of World with view=Class
// and such a token sees the records.
const Class = "moderator"

// The fields of a flag's record (every one hidden, written by servers).
const (
	FieldDetector    = "detector"
	FieldPlayers     = "players"
	FieldScore       = "score"
	FieldEvidence    = "evidence"
	FieldWorld       = "world"
	FieldIncarnation = "incarnation"
	FieldRaisedBy    = "raised_by"
	FieldState       = "state"
	FieldHistory     = "history"
	// FieldFlags is the index entity's set of record ids.
	FieldFlags = "flags"
)

// IndexEntity is the entity of World whose FieldFlags lists every record:
// the store reads entities by id only.
const IndexEntity = "index"

// fields are World's fields: every record's, and the index's FieldFlags.
var fields = map[string]fsm.FieldRule{
	FieldDetector:    {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	FieldPlayers:     {Type: fsm.KindString, Policy: fsm.PolicySet},
	FieldScore:       {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative},
	FieldEvidence:    {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	FieldWorld:       {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	FieldIncarnation: {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
	FieldRaisedBy:    {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	FieldState:       {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	FieldHistory:     {Type: fsm.KindString, Policy: fsm.PolicySet},
	FieldFlags:       {Type: fsm.KindString, Policy: fsm.PolicySet},
}

// Rules returns World's rules: strict (no field but these), every field
// hidden from players and the public ("visible": "hidden") and written
// only by servers and admins ("write": "server"); the viewer class Class
// sees hidden fields.
func Rules() fsm.Rules {
	r := fsm.RecordRules(fields)
	r.Schema.Viewers = map[string]fsm.ViewerRule{Class: {Sees: []string{"hidden"}}}
	return r
}

// ErrNotModeration reports a world named World whose rules are not
// Rules(): created by someone else before gsd made it, its records could
// be visible to players, so gsd writes nothing there (answered 500: an
// operator deletes that world, and the next record creates the right one).
var ErrNotModeration = errors.New("gsd/anticheat/moderation: the moderation world has other rules")

// CheckWorld returns nil when wi, a world named World, has World's rules
// (compared in their JSON form), else ErrNotModeration.
func CheckWorld(wi fsm.WorldInfo) error {
	got, _ := wi.Rules.MarshalJSON() // rules that do not encode are not these
	want, _ := Rules().MarshalJSON()
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s", ErrNotModeration, got)
	}
	return nil
}
