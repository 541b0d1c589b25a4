package detect

import (
	"fmt"
	"math"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// hitSession returns the events of p's session in world from leader time
// at: n shots a second apart, the first hits of them hits.
func hitSession(world, p string, at int64, n, hits int) []*fsm.Event {
	var evs []*fsm.Event
	for i := range n {
		t := at + int64(i)*sec
		c := []fsm.Change{set(p, "shot_at", t)}
		if i < hits {
			c = append(c, fsm.Change{Entity: fmt.Sprintf("npc-%s-%d", world, i), Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1)})
		}
		evs = append(evs, &fsm.Event{World: world, Seq: uint64(i + 1), Time: t, Player: p, Status: fsm.StatusApplied, Changes: c})
	}
	return evs
}

// aimConfig is small's, with accuracy's half-life h shots: a
// population whose 90th percentile hit ratio is 0.25 (below).
func aimConfig(h int) Config {
	c := small()
	c.Accuracy.HalfLifeShots = h
	return c
}

// population observes ten players of 20 shots with 3 to 5 hits each: the
// 90th percentile's hit ratio is 0.25.
func population(d *Detector) {
	for i, h := range []int{3, 4, 5, 3, 4, 5, 3, 4, 5, 4} {
		observeAll(d, hitSession(fmt.Sprintf("pop%d", i), fmt.Sprintf("h%d", i), 0, 20, h))
	}
}

// sessions observes p's n hourly sessions of 40 shots, 14 hits each
// (0.35: a good player, above the population's 0.25).
func sessions(d *Detector, p string, n int) {
	for s := range n {
		observeAll(d, hitSession(fmt.Sprintf("m%d", s), p, int64(s)*hour, 40, 14))
	}
}

// fadedZ is accuracy's hit score against 0.25 of n sessions of 40 shots
// whose first hits hit, each shot weighing 2^(−k/h), k the shots after
// it: computed here from the definition, not by the detector's sums.
func fadedZ(n, hits, h int) float64 {
	var w, hw float64
	for k := range 40 * n {
		x := math.Exp2(-float64(k) / float64(h))
		w += x
		if 39-k%40 < hits { // k counts back from the last shot
			hw += x
		}
	}
	return (hw - 0.25*w) / math.Sqrt(w*0.1875)
}

func TestAGoodHonestPlayersLongHistoryDoesNotPushAccuracyPastItsThreshold(t *testing.T) {
	// Unfaded, 20 sessions of 40 shots at 0.35 against 0.25 score
	// (280 − 200) / √(800 × 0.1875) ≈ 6.53: past the threshold of 3, and
	// any threshold is passed by a history long enough.
	keep, err := New(aimConfig(0))
	require.NoError(t, err)
	population(keep)
	sessions(keep, "pro", 20)
	flags := only(keep.Evaluate(), DetAccuracy)
	require.Equal(t, []string{"pro"}, players(flags))
	require.InDelta(t, 80/math.Sqrt(800*0.1875), flags[0].Score, 1e-9)

	// Weighed by the shots after them (half-life 40 shots: a session),
	// the sessions weigh 1, 1/2, 1/4…: about 58 shots, whose hits (the
	// first of each session, so the older of it) score ≈ 0.43, the same
	// after 20 sessions as after 40 (of which the latest 16 are kept,
	// Switch.Sessions: the older weigh under 2^−16).
	for _, n := range []int{20, 40} {
		d, err := New(aimConfig(40))
		require.NoError(t, err)
		population(d)
		sessions(d, "pro", n)
		require.Empty(t, only(d.Evaluate(), DetAccuracy))
		z, ok := d.aimZ(d.players["pro"])
		require.True(t, ok)
		require.InDelta(t, fadedZ(min(n, DefaultConfig().Switch.Sessions), 14, 40), z, 1e-9)
		require.Less(t, z, 3.0)
	}
}

func TestAnAimbotsSessionScoresAsItsShotsWeighed(t *testing.T) {
	// One session of 40 shots and 34 hits: 8.76 unfaded, about 8.3 with
	// the default half-life of 200 shots (its first shots weigh 0.87).
	for _, h := range []int{0, DefaultConfig().Accuracy.HalfLifeShots} {
		d, err := New(aimConfig(h))
		require.NoError(t, err)
		population(d)
		observeAll(d, hitSession("m1", "bot", 0, 40, 34))
		flags := only(d.Evaluate(), DetAccuracy)
		require.Equal(t, []string{"bot"}, players(flags), h)
		want := 24 / math.Sqrt(40*0.1875)
		if h > 0 {
			want = fadedZ(1, 34, h)
		}
		require.InDelta(t, want, flags[0].Score, 1e-9, h)
	}
}

func TestAccuracysFadedScoreIsTheSameWhateverOrderAPlayersWorldsAreReadIn(t *testing.T) {
	// Two sessions an hour apart, with reactions (accuracy's reaction
	// term fades too), read in order and reversed.
	one, two := session("m1", "p", 0, fast), session("m2", "p", hour, fast)
	cfg := DefaultConfig()
	cfg.Accuracy.MinShots, cfg.Accuracy.MinPlayers = 10, 3
	score := func(worlds ...[]*fsm.Event) float64 {
		d, err := New(cfg)
		require.NoError(t, err)
		population(d)
		for _, w := range worlds {
			observeAll(d, w)
		}
		d.Evaluate()
		z, ok := d.aimZ(d.players["p"])
		require.True(t, ok)
		r := history(d.players["p"], d.aimKeep, sessionAimReact, sessionShots)
		require.True(t, d.judges(&r))
		return z
	}
	require.InDelta(t, score(one, two), score(two, one), 1e-9)
}

func TestAnAccuracyHalfLifeIsReadFromAConfigFileAndANegativeOneRefused(t *testing.T) {
	c, err := ParseConfig([]byte(`{"Accuracy": {"HalfLifeShots": 400}}`))
	require.NoError(t, err)
	require.Equal(t, 400, c.Accuracy.HalfLifeShots)
	_, err = ParseConfig([]byte(`{"Accuracy": {"HalfLifeShots": -1}}`))
	require.ErrorIs(t, err, ErrConfig)
}
