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

// fast is a cheater's reaction in the sessions below: over one
// session's 12 reactions (weighing about 11.3 with the default half-life
// of 64 reactions) the reaction score is about √11.3 × ln(200/110) / 0.25
// ≈ 8.0, under the default threshold of 10; over two sessions it is
// about 11.0.
const fast = 110 * time.Millisecond

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

// weight is the weight of n reactions in a row, each weighing 2^(−k/h),
// k the reactions after it (h the default half-life): computed here
// from the definition, not by the detector's sums.
func weight(n int) float64 {
	w := 0.0
	for k := range n {
		w += math.Exp2(-float64(k) / float64(DefaultConfig().Reaction.HalfLifeReactions))
	}
	return w
}

// historyScore is the reaction score of n fast reactions in a row, the
// newest at full weight.
func historyScore(n int) float64 {
	return math.Sqrt(weight(n)) * math.Log(200/fast.Seconds()/1000) / 0.25
}

// perSession is the reaction score of one session of 12 fast reactions.
var perSession = historyScore(12)

func observeAll(d *Detector, evs []*fsm.Event) {
	for _, ev := range evs {
		d.Observe(ev)
	}
}

func TestAPlayerUnderTheThresholdInEachSessionIsFlaggedOverTheirSessionsInSeveralWorlds(t *testing.T) {
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	require.Less(t, perSession, DefaultConfig().Reaction.Z)

	observeAll(d, session("m1", "p", 0, fast))
	require.Empty(t, only(d.Evaluate(), DetReaction), "one session is not enough evidence")
	require.InDelta(t, perSession, d.reactionZ(d.players["p"]), 1e-9)

	// An hour later, another match in another world: the first session's
	// reactions weigh 2^(−12/64) less, for the second's 12 after them.
	observeAll(d, session("m2", "p", hour, fast))
	flags := only(d.Evaluate(), DetReaction)
	require.Len(t, flags, 1)
	require.Equal(t, []string{"p"}, flags[0].Players)
	require.InDelta(t, historyScore(24), flags[0].Score, 1e-9)
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

func TestAPauseDoesNotFadeAPlayersReactionEvidence(t *testing.T) {
	// The same two sessions two days apart score as an hour apart: the
	// ages are counted in the player's reactions, not in leader time.
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, fast))
	require.Empty(t, only(d.Evaluate(), DetReaction))
	observeAll(d, session("m2", "p", 48*hour, fast))
	require.Equal(t, []string{"p"}, players(only(d.Evaluate(), DetReaction)))
	require.InDelta(t, historyScore(24), d.reactionZ(d.players["p"]), 1e-9)
}

func TestAPlayersReactionEvidenceFadesWithTheirOwnLaterReactions(t *testing.T) {
	// A fast session followed by sessions of 200 ms (ln 1 = 0: no
	// evidence either way) weighs 2^(−12n/64) after n of them.
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, fast))
	for i := range 10 {
		observeAll(d, session(fmt.Sprintf("n%d", i), "p", int64(i+1)*hour, 200*time.Millisecond))
	}
	old := weight(12) * math.Exp2(-120.0/64)
	want := old * math.Log(200/fast.Seconds()/1000) / (0.25 * math.Sqrt(weight(132)))
	require.InDelta(t, want, d.reactionZ(d.players["p"]), 1e-9)
	require.Less(t, want, 1.0)

	// Without a half-life every reaction weighs one.
	keep := DefaultConfig()
	keep.Reaction.HalfLifeReactions = 0
	d, err = New(keep)
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, fast))
	observeAll(d, session("m2", "p", 48*hour, fast))
	require.InDelta(t, math.Sqrt(24)*math.Log(200/fast.Seconds()/1000)/0.25, d.reactionZ(d.players["p"]), 1e-9)
}

func TestAFastHonestPlayersLongSessionDoesNotPushReactionPastItsThreshold(t *testing.T) {
	// 100 sessions' worth of reactions of 170 ms without a break, in one
	// world: unfaded, √1200 × ln(200/170) / 0.25 ≈ 22.5; weighed by the
	// reactions after each, about √92 × 0.65 ≈ 6.2, however long the
	// play (an hour straight, a day straight).
	var evs []*fsm.Event
	for i := range 100 {
		for _, ev := range session("m1", "p", int64(i)*2*int64(time.Minute), 170*time.Millisecond) {
			ev.Seq = uint64(len(evs) + 1)
			ev.Changes[0].Entity += fmt.Sprint("-", i) // the target: spawned, or hit
			evs = append(evs, ev)
		}
	}
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	observeAll(d, evs)
	require.Empty(t, only(d.Evaluate(), DetReaction))
	limit := math.Sqrt(1/(1-math.Exp2(-1.0/64))) * math.Log(200.0/170) / 0.25
	require.InDelta(t, limit, d.reactionZ(d.players["p"]), 1e-3)
	require.Less(t, limit, DefaultConfig().Reaction.Z)

	keep := DefaultConfig()
	keep.Reaction.HalfLifeReactions = 0
	d, err = New(keep)
	require.NoError(t, err)
	observeAll(d, evs)
	require.Equal(t, []string{"p"}, players(only(d.Evaluate(), DetReaction)))
}

func TestAPlayerWhoStoppedCheatingIsNotFlaggedByTheirOldSessions(t *testing.T) {
	d, err := New(DefaultConfig())
	require.NoError(t, err)
	observeAll(d, session("m1", "p", 0, fast))
	// Three honest sessions after (300 ms): the old evidence weighs
	// 2^(−36/64) and the honest reactions outweigh it.
	for i, w := range []string{"m2", "m3", "m4"} {
		observeAll(d, session(w, "p", 24*hour+int64(i)*hour, 300*time.Millisecond))
	}
	require.Empty(t, only(d.Evaluate(), DetReaction))
	require.Negative(t, d.reactionZ(d.players["p"]))
}

func TestAReactionHalfLifeIsReadFromAConfigFileAndANegativeOneRefused(t *testing.T) {
	c, err := ParseConfig([]byte(`{"Reaction": {"HalfLifeReactions": 128}}`))
	require.NoError(t, err)
	require.Equal(t, 128, c.Reaction.HalfLifeReactions)
	_, err = ParseConfig([]byte(`{"Reaction": {"HalfLifeReactions": -1}}`))
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
	require.InDelta(t, historyScore(24), score, 1e-9)

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
