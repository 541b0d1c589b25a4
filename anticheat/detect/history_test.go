package detect

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

const hour = int64(time.Hour)

// fast is a cheater's reaction in the sessions below: over one session's
// 12 reactions the reaction score is √12 × ln(200/120) / 0.25 ≈ 7.08,
// under the default threshold of 8.5; over two sessions an hour apart it
// is about 9.7.
const fast = 120 * time.Millisecond

// session returns the events of one session of player p in world, from
// leader time at: 12 targets appear 10 s apart and p's first shot hits
// each react after it appears.
func session(world, p string, at int64, react time.Duration) []*fsm.Event {
	var evs []*fsm.Event
	add := func(t int64, player string, changes ...fsm.Change) {
		evs = append(evs, &fsm.Event{World: world, Seq: uint64(len(evs) + 1), Time: t, Player: player, Status: fsm.StatusApplied, Changes: changes})
	}
	for i := range int64(12) {
		t := at + i*10*sec
		npc := fmt.Sprintf("npc-%s-%d", world, i)
		add(t, "server", set(npc, "spawned", t))
		hit := t + int64(react)
		add(hit, p, fsm.Change{Entity: npc, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-10)}, set(p, "shot_at", hit))
	}
	return evs
}

// perSession is the reaction score of one session of 12 fast reactions
// at full weight.
var perSession = math.Sqrt(12) * math.Log(200/fast.Seconds()/1000) / 0.25

func observeAll(d *Detector, evs []*fsm.Event) {
	for _, ev := range evs {
		d.Observe(ev)
	}
}

// historyScore is the reaction score of 12 reactions at full weight and
// 12 more weighed w (a session older by some half-lives).
func historyScore(w float64) float64 {
	return math.Sqrt(12+12*w) * math.Log(200/fast.Seconds()/1000) / 0.25
}

func TestAPlayerUnderTheThresholdInEachSessionIsFlaggedOverTheirSessionsInSeveralWorlds(t *testing.T) {
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	require.Less(t, perSession, DefaultConfig().Reaction.Z)

	observeAll(d, session("m1", "p", 0, fast))
	require.Empty(t, only(d.Evaluate(), DetReaction), "one session is not enough evidence")
	require.InDelta(t, perSession, d.reactionZ(d.players["p"]), 1e-2) // faded over its 2 minutes

	// An hour later, another match in another world: the first session
	// weighs 2^(−1/6) ≈ 0.89 (half-life 6 h).
	observeAll(d, session("m2", "p", hour, fast))
	flags := only(d.Evaluate(), DetReaction)
	require.Len(t, flags, 1)
	require.Equal(t, []string{"p"}, flags[0].Players)
	require.InDelta(t, historyScore(math.Exp2(-1.0/6)), flags[0].Score, 1e-2)
	require.GreaterOrEqual(t, flags[0].Score, DefaultConfig().Reaction.Z)
	require.Equal(t, "m2", flags[0].Evidence[len(flags[0].Evidence)-1].World)
}

func TestAPlayersHistoryScoresTheSameWhateverOrderItsWorldsAreReadIn(t *testing.T) {
	one, two := session("m1", "p", 0, fast), session("m2", "p", hour, fast)
	inOrder, err := New(DefaultConfig())
	require.NoError(t, err)
	observeAll(inOrder, one)
	observeAll(inOrder, two)
	reversed, err := New(DefaultConfig())
	require.NoError(t, err)
	observeAll(reversed, two) // a Runner reads worlds side by side
	// Evaluations forget old appearances, by their world's time: m1's, an
	// hour behind m2's, stay until their hits come.
	var flags []Flag
	for _, ev := range one {
		reversed.Observe(ev)
		flags = append(flags, reversed.Evaluate()...)
	}
	require.InDelta(t, inOrder.reactionZ(inOrder.players["p"]), reversed.reactionZ(reversed.players["p"]), 1e-9)
	require.Equal(t, players(only(inOrder.Evaluate(), DetReaction)), players(only(flags, DetReaction)))
}

func TestReactionEvidenceFadesSoAnOldSessionNoLongerAddsUp(t *testing.T) {
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, fast))
	require.Empty(t, only(d.Evaluate(), DetReaction))
	// Two days later (8 half-lives) the first session weighs 1/256.
	observeAll(d, session("m2", "p", 48*hour, fast))
	require.Empty(t, only(d.Evaluate(), DetReaction), "evidence of two days ago has faded")
	require.InDelta(t, historyScore(1.0/256), d.reactionZ(d.players["p"]), 1e-2)

	// Without a half-life the same two sessions are flagged.
	keep := DefaultConfig()
	keep.Reaction.HalfLife = 0
	d, err = New(keep)
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, fast))
	observeAll(d, session("m2", "p", 48*hour, fast))
	require.Equal(t, []string{"p"}, players(only(d.Evaluate(), DetReaction)))
}

func TestAPlayerWhoStoppedCheatingIsNotFlaggedByTheirOldSessions(t *testing.T) {
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, fast))
	// A day later, three honest sessions (300 ms): the old evidence
	// weighs 1/16 and the honest reactions outweigh it.
	for i, w := range []string{"m2", "m3", "m4"} {
		observeAll(d, session(w, "p", 24*hour+int64(i)*hour, 300*time.Millisecond))
	}
	require.Empty(t, only(d.Evaluate(), DetReaction))
	require.Negative(t, d.reactionZ(d.players["p"]))
}

func TestAReactionHalfLifeIsReadFromAConfigFileAndANegativeOneRefused(t *testing.T) {
	c, err := ParseConfig([]byte(`{"Reaction": {"HalfLife": "12h"}}`))
	require.NoError(t, err)
	require.Equal(t, 12*time.Hour, c.Reaction.HalfLife)
	_, err = ParseConfig([]byte(`{"Reaction": {"HalfLife": "-1h"}}`))
	require.ErrorIs(t, err, ErrConfig)
}

// historyRun runs a Runner of a default Detector (evaluating at every
// event and every millisecond) over src until it has read events, and
// returns its reaction flags and p's reaction score at the end.
func historyRun(t *testing.T, src Source, events int) ([]Flag, float64) {
	c := DefaultConfig()
	c.Every, c.Scan = 1, time.Millisecond
	d, err := New(c)
	require.NoError(t, err)
	var mem Memory
	r, err := NewRunner(d, src, &mem, slog.Default())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.events == uint64(events)
	}, 10*time.Second, time.Millisecond)
	cancel()
	<-done
	for _, f := range d.Evaluate() {
		mem.Flag(f)
	}
	return only(mem.Flags(), DetReaction), d.reactionZ(d.players["p"])
}

// A player's history lives in the worlds' archived events: a restarted
// node (a new Detector and Runner) and a new leader of the worlds both
// rebuild it by following each world from seq 1, so a player flagged
// over two sessions in two worlds is flagged again, with the same
// evidence at the end; a node that sees only the second session does not
// flag them. (A Runner reads the worlds side by side and evaluates as it
// goes, so the score a flag carries is that of the first evaluation over
// the threshold, which the order of reads moves.)
func TestAPlayersHistoryAcrossWorldsSurvivesARestartAndALeadershipChange(t *testing.T) {
	archive := func(worlds ...string) *source {
		src := newSource(worlds...)
		for i, w := range worlds {
			src.events[w] = session(w, "p", int64(i)*hour, fast)
		}
		return src
	}
	z := DefaultConfig().Reaction.Z
	before, score := historyRun(t, archive("m1", "m2"), 48)
	require.Equal(t, []string{"p"}, players(before))
	require.GreaterOrEqual(t, before[0].Score, z)
	require.InDelta(t, historyScore(math.Exp2(-1.0/6)), score, 1e-2)

	restarted, again := historyRun(t, archive("m1", "m2"), 48)
	require.Equal(t, []string{"p"}, players(restarted))
	require.InDelta(t, score, again, 1e-9)

	led := &ledSource{source: archive("m1", "m2")}
	led.lead("m1", "m2") // both worlds' leadership moved to this node
	leader, again := historyRun(t, led, 48)
	require.Equal(t, []string{"p"}, players(leader))
	require.InDelta(t, score, again, 1e-9)

	src := newSource("m2") // the second session alone
	src.events["m2"] = session("m2", "p", hour, fast)
	alone, _ := historyRun(t, src, 24)
	require.Empty(t, alone)
}
