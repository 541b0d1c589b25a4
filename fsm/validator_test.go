package fsm

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeValidator records what it saw and rejects via reject.
type fakeValidator struct {
	calls  int
	reject func(v View, a *Action, now int64) error
}

func (f *fakeValidator) Validate(v View, a *Action, now int64) error {
	f.calls++
	if f.reject == nil {
		return nil
	}
	return f.reject(v, a, now)
}

func validated(t *testing.T, vs ...Validator) *harness {
	cfg := DefaultConfig()
	cfg.Validators = vs
	h := newHarness(t, cfg)
	h.createWorld("w", Rules{})
	return h
}

func TestValidatorRejectionCarriesTheErrorsCode(t *testing.T) {
	v := &fakeValidator{reject: func(_ View, a *Action, _ int64) error {
		if a.Player == "cheater" {
			return codedError{"speed_hack"}
		}
		return nil
	}}
	h := validated(t, v)
	h.event(act("w", "honest", 1, opSet("e", "x", Int(1))))
	before := h.hash("w")
	ev := h.event(act("w", "cheater", 1, opSet("e", "x", Int(1000)), opIncr("e", "score", 99)))
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, "speed_hack", ev.Reason)
	require.Empty(t, ev.Changes)
	require.Equal(t, before, h.hash("w"))
	require.Equal(t, Int(1), h.field("w", "e", "x").Value)

	// The rejection is retained like any outcome.
	r := h.do(act("w", "cheater", 1, opSet("e", "x", Int(1000)), opIncr("e", "score", 99)))
	require.True(t, r.Duplicate)
	require.Equal(t, "speed_hack", r.Event.Reason)
	require.Equal(t, 2, v.calls, "a duplicate is not validated again")
}

func TestValidatorRejectionWithoutACodeUsesTheValidatorReason(t *testing.T) {
	for _, err := range []error{errors.New("nope"), codedError{""}, ErrValidator} {
		h := validated(t, &fakeValidator{reject: func(View, *Action, int64) error { return err }})
		ev := h.event(act("w", "p", 1, opIncr("e", "c", 1)))
		require.Equal(t, StatusRejected, ev.Status)
		require.Equal(t, CodeValidator, ev.Reason)
	}
}

func TestValidatorSeesTheWorldBeforeTheActionAndTheLeaderTime(t *testing.T) {
	type seen struct {
		hp, name     Value
		hpV, nameV   uint64
		hpOK, nameOK bool
		missingOK    bool
		noEntityOK   bool
		seq          uint64
		now          int64
	}
	var got []seen
	v := &fakeValidator{reject: func(view View, a *Action, now int64) error {
		var s seen
		s.hp, s.hpV, s.hpOK = view.Field("e", "hp")
		s.name, s.nameV, s.nameOK = view.Field("e", "name")
		_, _, s.missingOK = view.Field("e", "nope")
		_, _, s.noEntityOK = view.Field("nobody", "hp")
		s.seq, s.now = view.Seq(), now
		got = append(got, s)
		return nil
	}}
	h := validated(t, v)
	h.event(act("w", "p", 1, opIncr("e", "hp", 5)))
	h.event(act("w", "p", 2, opIncr("e", "hp", 2), opSet("e", "name", String("ann"))))
	require.Len(t, got, 2)
	require.Equal(t, seen{seq: 1, now: h.time - 1_000_000}, got[0])
	require.Equal(t, seen{hp: Int(5), hpV: 1, hpOK: true, seq: 2, now: h.time}, got[1],
		"the view is the state before the action; Seq is the seq the action takes")
}

func TestValidatorsRunInOrderAndStopAtTheFirstRejection(t *testing.T) {
	var order []string
	mk := func(name string, reject bool) *fakeValidator {
		return &fakeValidator{reject: func(View, *Action, int64) error {
			order = append(order, name)
			if reject {
				return codedError{name}
			}
			return nil
		}}
	}
	third := mk("third", false)
	h := validated(t, mk("first", false), mk("second", true), third)
	ev := h.event(act("w", "p", 1, opIncr("e", "c", 1)))
	require.Equal(t, "second", ev.Reason)
	require.Equal(t, []string{"first", "second"}, order)
	require.Zero(t, third.calls)
}

func TestValidatorsDoNotSeeActionsRejectedOrConflictingEarlier(t *testing.T) {
	v := &fakeValidator{}
	h := validated(t, v)
	h.event(act("w", "p", 1, opSet("e", "x", Int(1))))
	require.Equal(t, 1, v.calls)
	require.Equal(t, StatusRejected, h.event(act("w", "p", 2)).Status)
	require.Equal(t, StatusRejected, h.event(act("w", "p", 3, opIncr("e", "x", 1))).Status)
	require.Equal(t, StatusConflict, h.event(act("w", "p", 4, withExpect(opSet("e", "x", Int(2)), expectAbsent))).Status)
	require.ErrorIs(t, h.do(act("nope", "p", 1, opSet("e", "x", Int(1)))).Err, ErrUnknownWorld)
	require.Equal(t, 1, v.calls)
}
