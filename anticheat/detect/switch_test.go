package detect

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// switchConfig judges a player's sessions of 12 reactions (session, in
// history_test.go) by Switch, flagging at a score of 5.
func switchConfig() Config {
	c := DefaultConfig()
	c.Switch.MinReactions, c.Switch.MinShots, c.Switch.Z = 12, 12, 5
	return c
}

// aimSession returns a session of p in world from leader time at: 12
// targets 10 s apart, each shot at shots times (react after it appears,
// then 200 ms apart), the first hits of them hitting.
func aimSession(world, p string, at int64, react time.Duration, shots, hits int) []*fsm.Event {
	var evs []*fsm.Event
	add := func(t int64, player string, changes ...fsm.Change) {
		evs = append(evs, &fsm.Event{World: world, Seq: uint64(len(evs) + 1), Time: t, Player: player, Status: fsm.StatusApplied, Changes: changes})
	}
	for i := range int64(12) {
		t := at + i*10*sec
		npc := fmt.Sprintf("npc-%s-%d", world, i)
		add(t, "server", set(npc, "spawned", t))
		for s := range shots {
			st := t + int64(react) + int64(s)*200*int64(time.Millisecond)
			if s < hits {
				add(st, p, fsm.Change{Entity: npc, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-10)}, set(p, "shot_at", st))
			} else {
				add(st, p, set(p, "shot_at", st))
			}
		}
	}
	return evs
}

func TestAPlayerWhoseReactionsDropBetweenSessionsIsFlaggedAgainstTheirOwnHistory(t *testing.T) {
	d, err := New(switchConfig())
	require.NoError(t, err)
	for i, react := range []time.Duration{300, 300, 150, 150} {
		observeAll(d, session(fmt.Sprintf("m%d", i+1), "p", int64(i)*hour, react*time.Millisecond))
	}
	flags := only(d.Evaluate(), DetSwitch)
	require.Equal(t, []string{"p"}, players(flags))
	// The split after two sessions: a drop of ln 2 less 2 sessions' drift
	// (4 sessions: the middles are 2 apart), over 0.25 × √(1/24 + 1/24);
	// every shot hits on both sides, so the hit ratios add nothing.
	want := (math.Log(2) - 2*0.03) / (0.25 * math.Sqrt(2.0/24))
	require.InDelta(t, want, flags[0].Score, 1e-9)
	require.Equal(t, "m4", flags[0].Evidence[len(flags[0].Evidence)-1].World)
}

func TestAFastHonestPlayerAndASlowlyImprovingOneAreNotFlaggedBySwitch(t *testing.T) {
	d, err := New(switchConfig())
	require.NoError(t, err)
	react := 300.0
	for i := range 6 {
		w := fmt.Sprintf("m%d", i+1)
		observeAll(d, session(w, "fast", int64(i)*hour, 130*time.Millisecond)) // faster than any aimbot of the corpora, always
		observeAll(d, session(w, "improver", int64(i)*hour, time.Duration(react*float64(time.Millisecond))))
		react *= 0.97 // 3% a session: Switch.Drift
	}
	flags := d.Evaluate()
	require.Empty(t, only(flags, DetSwitch))
	require.Equal(t, []string{"fast"}, players(only(flags, DetReaction)), "reaction's fixed reference flags the fast one")
	z, ok := d.switchZ(d.players["improver"])
	require.True(t, ok)
	require.Less(t, z, 0.5)
	z, _ = d.switchZ(d.players["fast"])
	require.Negative(t, z, "no change but the drift allowed")
}

func TestAPlayerWhoseHitRatioJumpsBetweenSessionsIsFlaggedBySwitch(t *testing.T) {
	d, err := New(switchConfig())
	require.NoError(t, err)
	// The same reactions, 4 shots a target: 1 hit before, 4 after.
	observeAll(d, aimSession("m1", "p", 0, 300*time.Millisecond, 4, 1))
	observeAll(d, aimSession("m2", "p", hour, 300*time.Millisecond, 4, 4))
	flags := only(d.Evaluate(), DetSwitch)
	require.Equal(t, []string{"p"}, players(flags))
	// 12 of 48 against 48 of 48 (pooled 60 of 96), less one session's drift.
	pool := 60.0 / 96
	acc := (1 - 0.25 - 0.015) / math.Sqrt(pool*(1-pool)*(2.0/48))
	react := -0.03 / (0.25 * math.Sqrt(2.0/12))
	require.InDelta(t, acc+react, flags[0].Score, 1e-9)
}

func TestSwitchJudgesNoSplitWithTooFewSamplesOnASide(t *testing.T) {
	c := switchConfig()
	c.Switch.MinReactions = 13 // a session has 12
	d, err := New(c)
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, 300*time.Millisecond))
	observeAll(d, session("m2", "p", hour, 100*time.Millisecond))
	require.Empty(t, only(d.Evaluate(), DetSwitch))
	_, ok := d.switchZ(d.players["p"])
	require.False(t, ok)
	c.Switch.MinReactions, c.Switch.MinShots = 12, 13
	d, err = New(c)
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, 300*time.Millisecond))
	observeAll(d, session("m2", "p", hour, 100*time.Millisecond))
	_, ok = d.switchZ(d.players["p"])
	require.False(t, ok)
}

func TestSwitchScoresTheSameWhateverOrderAPlayersWorldsAreReadIn(t *testing.T) {
	var sessions [][]*fsm.Event
	for i, react := range []time.Duration{300, 280, 150} {
		sessions = append(sessions, session(fmt.Sprintf("m%d", i+1), "p", int64(i)*hour, react*time.Millisecond))
	}
	inOrder, err := New(switchConfig())
	require.NoError(t, err)
	reversed, err := New(switchConfig())
	require.NoError(t, err)
	for i := range sessions {
		observeAll(inOrder, sessions[i])
		observeAll(reversed, sessions[len(sessions)-1-i])
	}
	a, ok := inOrder.switchZ(inOrder.players["p"])
	require.True(t, ok)
	b, _ := reversed.switchZ(reversed.players["p"])
	require.InDelta(t, a, b, 1e-9)
	var worlds []string
	for _, s := range reversed.players["p"].sessions {
		worlds = append(worlds, s.world)
	}
	require.Equal(t, []string{"m1", "m2", "m3"}, worlds, "kept in the order they started")
}

func TestSwitchKeepsAPlayersLatestSessionsOnly(t *testing.T) {
	c := switchConfig()
	c.Switch.Sessions = 2
	d, err := New(c)
	require.NoError(t, err)
	observeAll(d, session("m2", "p", hour, 300*time.Millisecond))
	observeAll(d, session("m3", "p", 2*hour, 300*time.Millisecond))
	observeAll(d, session("m1", "p", 0, 100*time.Millisecond)) // older than both: not kept
	observeAll(d, session("m4", "p", 3*hour, 150*time.Millisecond))
	var worlds []string
	for _, s := range d.players["p"].sessions {
		worlds = append(worlds, s.world)
		require.Equal(t, 12, s.reactions)
	}
	require.Equal(t, []string{"m3", "m4"}, worlds)
	require.Equal(t, []string{"p"}, players(only(d.Evaluate(), DetSwitch)))
}

func TestABadSwitchConfigIsRefused(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"sessions": func(c *Config) { c.Switch.Sessions = 1 },
		"drift":    func(c *Config) { c.Switch.Drift = -0.1 },
		"accdrift": func(c *Config) { c.Switch.AccDrift = -0.1 },
	} {
		c := DefaultConfig()
		mut(&c)
		_, err := New(c)
		require.ErrorIs(t, err, ErrConfig, name)
	}
}
