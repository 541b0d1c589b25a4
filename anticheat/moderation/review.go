package moderation

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// A record's states.
const (
	StateOpen      = "open"      // raised, not reviewed
	StateConfirmed = "confirmed" // a moderator found it true
	StateDismissed = "dismissed" // a moderator found it false: final
	StateAppealed  = "appealed"  // a confirmation under appeal
)

// The review operations.
const (
	OpConfirm = "confirm"
	OpDismiss = "dismiss"
	OpAppeal  = "appeal"
)

// Ops lists the review operations.
var Ops = []string{OpConfirm, OpDismiss, OpAppeal}

// transitions is the state machine: state → op → next state.
//
//	open      --confirm--> confirmed
//	open      --dismiss--> dismissed
//	confirmed --appeal---> appealed
//	appealed  --confirm--> confirmed  (the appeal is refused)
//	appealed  --dismiss--> dismissed  (the appeal is granted)
//
// Everything else is illegal: an open flag has nothing to appeal, a
// confirmed one is dismissed only through an appeal, a dismissed one is
// closed (a new suspicion is a new flag).
var transitions = map[string]map[string]string{
	StateOpen:      {OpConfirm: StateConfirmed, OpDismiss: StateDismissed},
	StateConfirmed: {OpAppeal: StateAppealed},
	StateAppealed:  {OpConfirm: StateConfirmed, OpDismiss: StateDismissed},
}

// Next returns the state op leads to from state, or an error wrapping
// ErrIllegal (ErrInvalid for an unknown op).
func Next(state, op string) (string, error) {
	known := false
	for _, o := range Ops {
		known = known || o == op
	}
	if !known {
		return "", fmt.Errorf("%w: review op %q: want one of %s", ErrInvalid, op, strings.Join(Ops, ", "))
	}
	next, ok := transitions[state][op]
	if !ok {
		return "", fmt.Errorf("%w: %s a flag that is %s (%s)", ErrIllegal, op, state, allowed(state))
	}
	return next, nil
}

// allowed says what state allows.
func allowed(state string) string {
	var ops []string
	for _, o := range Ops {
		if _, ok := transitions[state][o]; ok {
			ops = append(ops, o)
		}
	}
	if len(ops) == 0 {
		return "it is closed"
	}
	return "it allows " + strings.Join(ops, ", ")
}

// Review is one transition of a record: who made it, why and when (the
// reviewing node's clock).
type Review = wire.FlagReview

// ReviewAction returns the action that applies op to r (as read) by by,
// for reason, at at, as writer's action seq, and the review it records:
// it sets the state expecting the version read, so a review committed
// meanwhile makes it a conflict (ErrRace), and adds the review to the
// history. An illegal transition is ErrIllegal.
func ReviewAction(r Record, op, by, reason string, at time.Time, writer string, seq uint64) (*fsm.Action, Review, error) {
	next, err := Next(r.State, op)
	if err != nil {
		return nil, Review{}, err
	}
	switch {
	case by == "" || len(by) > fsm.MaxNameLen || !utf8.ValidString(by):
		return nil, Review{}, fmt.Errorf("%w: a review names its moderator (by: 1..%d bytes of UTF-8)", ErrInvalid, fsm.MaxNameLen)
	case reason == "" || len(reason) > MaxReason || !utf8.ValidString(reason):
		return nil, Review{}, fmt.Errorf("%w: a review gives a reason of 1..%d bytes of UTF-8", ErrInvalid, MaxReason)
	}
	rv := Review{N: len(r.History) + 1, Op: op, From: r.State, To: next, By: by, Reason: reason, At: at.UTC()}
	b, _ := json.Marshal(rv) // plain fields: never fails
	a := &fsm.Action{World: World, Player: writer, Seq: seq, Role: fsm.RoleServer, Ops: []fsm.Op{
		{Kind: fsm.OpSet, Entity: r.ID, Field: FieldState, Value: fsm.String(next), Expect: fsm.Expect{Mode: fsm.ExpectVersion, Version: r.stateVersion}},
		{Kind: fsm.OpAdd, Entity: r.ID, Field: FieldHistory, Value: fsm.String(string(b))},
	}}
	if err := a.Validate(); err != nil {
		return nil, Review{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return a, rv, nil
}
