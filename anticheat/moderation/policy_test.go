package moderation

import (
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestPolicyBansOnConfirmAndLiftsOnAGrantedAppealOnlyWhereTheRulesSaySo(t *testing.T) {
	r := FromFlag(flag(), 7, "n1")
	ban := fsm.WorldInfo{ID: "arena", Incarnation: 7, Rules: fsm.Rules{Schema: fsm.Schema{Labels: map[string]string{PolicyLabel: PolicyBan}}}}
	confirm := Review{From: StateOpen, To: StateConfirmed}
	for name, c := range map[string]struct {
		rv         Review
		wi         fsm.WorldInfo
		ban, unban bool
	}{
		"confirm":                {confirm, ban, true, false},
		"confirm after appeal":   {Review{From: StateAppealed, To: StateConfirmed}, ban, true, false},
		"appeal granted":         {Review{From: StateAppealed, To: StateDismissed}, ban, false, true},
		"dismissed when open":    {Review{From: StateOpen, To: StateDismissed}, ban, false, false},
		"appeal":                 {Review{From: StateConfirmed, To: StateAppealed}, ban, false, false},
		"no label":               {confirm, fsm.WorldInfo{ID: "arena", Incarnation: 7}, false, false},
		"another label value":    {confirm, fsm.WorldInfo{ID: "arena", Incarnation: 7, Rules: fsm.Rules{Schema: fsm.Schema{Labels: map[string]string{PolicyLabel: "kick"}}}}, false, false},
		"another incarnation":    {confirm, fsm.WorldInfo{ID: "arena", Incarnation: 8, Rules: ban.Rules}, false, false},
		"another world (a miss)": {confirm, fsm.WorldInfo{}, false, false},
	} {
		b, u := Policy(r, c.rv, c.wi)
		require.Equal(t, [2]bool{c.ban, c.unban}, [2]bool{b, u}, name)
	}
	none := r
	none.World = ""
	b, u := Policy(none, confirm, fsm.WorldInfo{Rules: ban.Rules})
	require.False(t, b || u, "a flag without a world")

	require.Equal(t, "anticheat flag "+r.ID+" (speed) confirmed by mia: 120 ms", BanReason(r, Review{By: "mia", Reason: "120 ms"}))
	require.Len(t, BanReason(r, Review{By: "mia", Reason: strings.Repeat("x", fsm.MaxStringLen)}), fsm.MaxStringLen)
}
