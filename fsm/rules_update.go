package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Errors of a rules update; Code maps them like the others.
var (
	// ErrRulesConflict reports a rules update whose expected rules version
	// is not the world's current one.
	ErrRulesConflict = errors.New("gsd/fsm: rules version conflict")
	// ErrRulesIncompatible reports a rules update that the world's
	// existing state would not satisfy.
	ErrRulesIncompatible = errors.New("gsd/fsm: rules incompatible with the world's state")
)

// Codes of the rules update errors.
const (
	CodeRulesConflict     = "rules_conflict"
	CodeRulesIncompatible = "rules_incompatible"
)

// RulesUpdate replaces a world's rules (CmdUpdateRules, log version 2).
// Expect, when not 0, is the rules version it replaces: the update is
// refused with ErrRulesConflict if another came first.
//
// Carried by CmdUpdateRulesEvent (log version 12), the same update is
// also the world's next event: seq + 1, no player, no changes, a Notice
// of kind NoticeRules with the new rules version. Every reader of the
// feed (event streams, watch pipelines, play views, relays, the archive)
// then sees the change at its exact seq: the events before it are cut
// under the old rules, those after it under the new. The kind is a kind
// of its own, not a flag in the payload, so that a log 11 replica cannot
// read it as an update without the event (its seqs would differ): it
// stops at the kind it does not read, and the version gate keeps the
// leader from proposing it until every voter reads log 12; until then
// the leader proposes CmdUpdateRules, whose bytes are as before.
type RulesUpdate struct {
	World  string
	Expect uint64
	Rules  Rules
}

// NoticeRules is the kind of a rules update's notice (CmdUpdateRulesEvent).
const NoticeRules = "rules"

// updateRules applies a rules update, all or nothing: every check runs
// before anything changes. The world's rules version rises by one; with
// event set (CmdUpdateRulesEvent) the update is also the world's next
// event, at log index index and leader time now.
func (f *FSM) updateRules(index uint64, now int64, u *RulesUpdate, event bool) Result {
	w, err := f.writable(u.World)
	if err != nil {
		return Result{Err: err}
	}
	auth, err := u.Rules.compile()
	if err != nil {
		return Result{Err: err}
	}
	if u.Expect != 0 && u.Expect != w.rulesVersion {
		return Result{Err: fmt.Errorf("%w: world %s has rules version %d, not %d", ErrRulesConflict, u.World, w.rulesVersion, u.Expect)}
	}
	if err := compatible(w, u.Rules); err != nil {
		return Result{Err: err}
	}
	w.rules, w.auth = u.Rules, auth
	w.rulesVersion++
	w.rulesSum = rulesHash(w.rulesVersion, w.rules)
	f.publishView()
	res := Result{RulesVersion: w.rulesVersion}
	if event {
		w.seq++
		w.index = index
		now = max(now, w.clock)
		w.clock = now
		res.Event = &Event{World: u.World, Seq: w.seq, Index: index, Time: now, Status: StatusApplied,
			Notice: &Notice{Kind: NoticeRules, RulesVersion: w.rulesVersion}}
		w.recordHash(f.cfg.HashHistory)
	}
	return res
}

// compatible checks that new rules keep every field the world may already
// hold as it is: a declared field keeps its type and policy and stays
// declared (entities may hold it, and a field's policy and type never
// change once written), and a newly declared field that the world has
// inferred from a write declares what was inferred. Strictness, fairness
// and new fields may change freely. Fields in name order: the first error
// is part of Apply's result.
func compatible(w *world, r Rules) error {
	for _, n := range w.rules.fieldNames() {
		old := w.rules.Fields[n]
		nf, ok := r.Fields[n]
		if !ok {
			return fmt.Errorf("%w: declared field %q cannot be removed", ErrRulesIncompatible, n)
		}
		if nf != old {
			return fmt.Errorf("%w: field %q is %s %s, cannot become %s %s", ErrRulesIncompatible, n, old.Type, old.Policy, nf.Type, nf.Policy)
		}
	}
	for _, n := range r.fieldNames() {
		if inf, ok := w.inferred[n]; ok && inf != r.Fields[n] {
			nf := r.Fields[n]
			return fmt.Errorf("%w: field %q was written as %s %s, cannot be declared %s %s", ErrRulesIncompatible, n, inf.Type, inf.Policy, nf.Type, nf.Policy)
		}
	}
	return nil
}

// rulesHash is the rules' term of the world's state hash. A world whose
// rules were never updated (version 1) has none, so its hash is what it was
// before rules versions existed; an update makes the version and the whole
// rules, schema keys included, part of the hash.
func rulesHash(version uint64, r Rules) uint64 {
	if version <= 1 {
		return 0
	}
	e := encoder{b: binary.AppendUvarint([]byte{tagRules}, version)}
	e.rules(r)
	return xxhash.Sum64(e.b)
}

const tagRules byte = 'r'
