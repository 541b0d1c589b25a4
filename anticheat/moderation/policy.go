package moderation

import (
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// A world's rules may say what a confirmed flag found in it does, with a
// label (rules key labels, free-form): PolicyLabel set to PolicyBan bans
// the flag's players from that world when a moderator confirms it, and
// lifts those bans when an appeal is granted (appealed → dismissed).
// Without the label a confirmation is a record only: nothing is banned
// automatically unless the rules say so.
const (
	PolicyLabel = "gsd.moderation.on_confirm"
	PolicyBan   = "ban"
)

// Policy says what the committed review rv of r does under the rules of
// r's world as wi (this node's view of it) has them: ban its players,
// unban them, or neither. It applies only to the incarnation r was found
// in: a world deleted and created again is another match.
func Policy(r Record, rv Review, wi fsm.WorldInfo) (ban, unban bool) {
	if r.World == "" || wi.ID != r.World || wi.Incarnation != r.Incarnation || wi.Rules.Schema.Labels[PolicyLabel] != PolicyBan {
		return false, false
	}
	return rv.To == StateConfirmed, rv.From == StateAppealed && rv.To == StateDismissed
}

// BanReason is the reason a ban by policy records (at most
// fsm.MaxStringLen bytes).
func BanReason(r Record, rv Review) string {
	s := fmt.Sprintf("anticheat flag %s (%s) confirmed by %s: %s", r.ID, r.Detector, rv.By, rv.Reason)
	if len(s) > fsm.MaxStringLen {
		s = s[:fsm.MaxStringLen]
	}
	return s
}
