package spectator

import (
	"math"

	"github.com/gsd-dev/gsd/fsm"
)

// Quantisation (issue 13's bandwidth): a float field's rules may declare
// the precision spectators get of it (fields.<name>.quantum). Their
// streams (keyframes and deltas of the watch route, its segments, relays'
// and replays') show its value rounded to the nearest multiple of the
// quantum, and a change whose rounded value equals the one shown is not
// sent: a move within the quantum costs no bytes. What is shown of such a
// field is kept in the State a pipeline or replay owns (State.shown, a
// map beside the fields: a world without quanta pays nothing): the
// rounded value and the version of the change that last moved it since
// the pipeline started (a seeded field starts at its current version), so
// that a keyframe made at any point equals the keyframe before it plus
// the deltas since, versions included, within one pipeline; versions are
// not comparable across pipelines. Players' streams, the event stream and
// the archive keep full precision: their states are not quantised.

// Quantise returns v rounded to the nearest multiple of q (q > 0, finite),
// halves away from zero (math.Round), never -0. For a quantum 1/k of an
// integer k (0.1, 0.01, 0.25) it rounds v·k and divides by k, so that the
// result is the float nearest to the decimal multiple (0.3, not
// 0.30000000000000004, which would cost bytes in every frame); for others
// it multiplies by q. Either way it is a function of v and q alone, the
// same on every node. A v that is not finite, or whose rounding would
// overflow, is returned as it is.
func Quantise(v, q float64) float64 {
	var r float64
	if k := math.Round(1 / q); q < 1 && k >= 1 && math.Abs(1/q-k) <= 1e-9*k {
		r = math.Round(v*k) / k
	} else {
		r = math.Round(v/q) * q
	}
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0):
		return v
	case r == 0:
		return 0 // not -0
	}
	return r
}

// shownField is what spectators are shown of a quantised field: its
// value rounded, the version of the change that moved it there, and the
// seq it moved at.
type shownField struct {
	value       float64
	version, at uint64
}

// quantise makes s keep what spectators are shown of the fields quanta
// names (name → quantum; none: s keeps nothing of the kind), from its
// fields' values now: a pipeline's or replay's state, set before its first
// frame.
func (s *State) quantise(quanta map[string]float64) {
	s.quanta, s.shown = nil, nil
	if len(quanta) == 0 {
		return
	}
	s.quanta, s.shown = quanta, make(map[*fieldState]shownField)
	for _, e := range s.ents {
		for _, nf := range e.fields {
			s.show(nf.name, nf.f)
		}
	}
}

// show updates what spectators are shown of field name, f, after its
// change at s.seq: with a quantum and a float value, its rounded value,
// moved (with the change's version) only when the rounding differs from
// the one shown; otherwise nothing (its value and version show as they
// are).
func (s *State) show(name string, f *fieldState) {
	q, ok := s.quanta[name]
	if !ok {
		return
	}
	if f.isSet || f.value.Kind != fsm.KindFloat {
		delete(s.shown, f)
		return
	}
	v := Quantise(f.value.Float, q)
	if sh, ok := s.shown[f]; !ok || v != sh.value {
		s.shown[f] = shownField{value: v, version: f.version, at: s.seq}
	}
}

// shownValue returns what spectators are shown of f: its value and
// version, or, with a quantum, its rounded value and the version of the
// change that last moved it.
func (s *State) shownValue(f *fieldState) (fsm.Value, uint64) {
	if sh, ok := s.shown[f]; ok {
		return fsm.Float(sh.value), sh.version
	}
	return f.value, f.version
}

// shownVersion is shownValue's version.
func (s *State) shownVersion(f *fieldState) uint64 {
	if sh, ok := s.shown[f]; ok {
		return sh.version
	}
	return f.version
}

// movedSince reports whether what spectators are shown of f may have
// changed at seq from or later: always, but for a quantised field, whose
// rounded value moved at its shown seq.
func (s *State) movedSince(f *fieldState, from uint64) bool {
	sh, ok := s.shown[f]
	return !ok || sh.at >= from
}

// deltaField is what a delta shows of field name, f: newDeltaField,
// rounded when quantised.
func (s *State) deltaField(name string, f *fieldState) deltaField {
	if sh, ok := s.shown[f]; ok {
		return deltaField{name: name, value: fsm.Float(sh.value), version: sh.version}
	}
	return newDeltaField(name, f)
}
