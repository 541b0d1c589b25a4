package detect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// feed builds committed events of world "w" with rising seqs.
type feed struct {
	t   *testing.T
	d   *Detector
	seq uint64
}

func newFeed(t *testing.T, cfg Config) *feed {
	d, err := New(cfg)
	require.NoError(t, err)
	return &feed{t: t, d: d}
}

const sec = int64(time.Second)

func (f *feed) ev(at int64, player string, changes ...fsm.Change) uint64 {
	f.seq++
	f.d.Observe(&fsm.Event{World: "w", Seq: f.seq, Time: at, Player: player, Status: fsm.StatusApplied, Changes: changes})
	return f.seq
}

func set(entity, field string, v int64) fsm.Change {
	return fsm.Change{Entity: entity, Field: field, Op: fsm.OpSet, Value: fsm.Int(v)}
}

func (f *feed) move(at int64, p string, x, y int64) uint64 {
	return f.ev(at, p, set(p, "x", x), set(p, "y", y))
}

// only returns the flags of det.
func only(flags []Flag, det string) []Flag {
	var out []Flag
	for _, fl := range flags {
		if fl.Detector == det {
			out = append(out, fl)
		}
	}
	return out
}

func players(flags []Flag) []string {
	var out []string
	for _, fl := range flags {
		out = append(out, strings.Join(fl.Players, "+"))
	}
	return out
}

func small() Config {
	c := DefaultConfig()
	c.Speed.MinMoves, c.Jump.MinMoves, c.Straight.MinWindows = 10, 10, 2
	c.Reaction.MinSamples, c.Accuracy.MinShots, c.Accuracy.MinPlayers = 3, 10, 3
	c.Reaction.Z = 3 // 3 reactions of 90 ms: z = √3 × ln(200/90) / 0.25 = 5.5
	c.Accuracy.Z = 3
	c.Reaction.HalfLifeReactions, c.Accuracy.HalfLifeShots = 0, 0 // the scores below are exact, not faded
	c.Lockstep.MinTogether, c.WinTrade.MinMatches, c.Funnel.MinTransfers = 5, 6, 5
	c.Funnel.LLR = 0 // the counts decide: 5 transfers (5 ln 1.8 ≈ 2.9)
	return c
}

func TestDefaultConfigIsValidAndBadConfigsAreRefused(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	zero := DefaultConfig()
	zero.Reaction.Window = 0 // only reactions in an appearance's own instant
	require.NoError(t, zero.Validate())
	for name, mut := range map[string]func(*Config){
		"negative limit":     func(c *Config) { c.Limits.MaxStep = -1 },
		"window":             func(c *Config) { c.Straight.Window = 1 },
		"tick":               func(c *Config) { c.Lockstep.Tick = 0 },
		"reaction window":    func(c *Config) { c.Reaction.Window = -1 },
		"window near median": func(c *Config) { c.Reaction.Window = 500 * time.Millisecond }, // below 200 ms × e
		"median":             func(c *Config) { c.Reaction.Median = 0 },
		"sigma":              func(c *Config) { c.Reaction.Sigma = 0 },
		"group":              func(c *Config) { c.Lockstep.MaxGroup = 1 },
		"every":              func(c *Config) { c.Every = 0 },
		"min shots":          func(c *Config) { c.Accuracy.MinShots = 0 },
		"economy window":     func(c *Config) { c.Economy.Window = -1 },
		"share above 1":      func(c *Config) { c.Speed.Share = 1.5 },
		"share below 0":      func(c *Config) { c.Funnel.MaxReverse = -0.1 },
		"jump rate 0":        func(c *Config) { c.Jump.Rate = 0 },
		"quantile 1":         func(c *Config) { c.Accuracy.Quantile = 1 },
		"q of a coin":        func(c *Config) { c.WinTrade.Q = 0.5 },
		"honest share":       func(c *Config) { c.WinTrade.HonestShare = c.WinTrade.Share },
		"share 1":            func(c *Config) { c.WinTrade.Share = 1 },
	} {
		c := DefaultConfig()
		mut(&c)
		_, err := New(c)
		require.ErrorIs(t, err, ErrConfig, name)
	}
}

func TestSustainedNearMaxSpeedAndJumpsAfterPausesAreFlaggedWithTheirEvidence(t *testing.T) {
	f := newFeed(t, small())
	var last []uint64
	for i := range int64(12) {
		// 300 ms apart: the limit is 10 + 150 = 160 units; the cheater
		// moves 155, the walker 60, and zip 290 (over the limit: fast,
		// but no jump without a pause long enough for one).
		at := i * 300 * int64(time.Millisecond)
		last = append(last, f.move(at, "fast", 155*i, 0))
		f.move(at, "walker", 0, 60*i)
		f.move(at, "zip", 0, 290*i)
	}
	for i := range int64(12) {
		// 1 s apart: the limit is 510 units, enough for a jump: the
		// jumper moves 290 (of 300 allowed).
		f.move(10*sec+i*sec, "jumper", 290*i, 0)
	}
	flags := f.d.Evaluate()
	speed := only(flags, DetSpeed)
	require.Equal(t, []string{"fast", "zip"}, players(speed))
	require.InDelta(t, 1, speed[0].Score, 1e-9)
	var want []Ref
	for _, s := range last[len(last)-evidenceLen:] {
		want = append(want, Ref{"w", s})
	}
	require.Equal(t, want, speed[0].Evidence, "the last eight near-limit moves, oldest first")
	require.Equal(t, []string{"jumper"}, players(only(flags, DetJump)))
	require.Zero(t, f.d.players["zip"].jumps)
	require.Empty(t, f.d.Evaluate(), "a flag is raised once")
}

func TestJumpsAreJudgedWithTheirSampleSize(t *testing.T) {
	f := newFeed(t, small()) // 10 moves at least; an honest rate of 5%, z ≥ 2.5
	ms := int64(time.Millisecond)
	walk := func(p string, moves, jumps int) {
		x := int64(0)
		for i := range moves + 1 {
			step := int64(50)
			if i > 0 && i <= jumps {
				step = 290 // after a rest of 1 s: a jump
			}
			x += step
			f.move(int64(i)*1000*ms, p, x, 0)
		}
	}
	walk("few", 20, 3)    // 15% of 20 moves: z ≈ 2.1, chance
	walk("many", 100, 15) // 15% of 100 moves: z ≈ 4.6
	flags := only(f.d.Evaluate(), DetJump)
	require.Equal(t, []string{"many"}, players(flags))
	require.InDelta(t, (15-5)/math.Sqrt(100*0.05*0.95), flags[0].Score, 1e-9)
}

func TestAMoveMayChangeOneCoordinate(t *testing.T) {
	f := newFeed(t, small())
	f.move(0, "p", 0, 0)
	f.ev(sec, "p", set("p", "x", 100))
	f.ev(2*sec, "p", set("p", "y", 100))
	p := f.d.players["p"]
	require.Equal(t, [2]int64{100, 100}, [2]int64{p.x, p.y})
	require.Equal(t, 2, p.moves)
}

func TestStraightPathsAreFlaggedAndWanderingOnesAreNot(t *testing.T) {
	f := newFeed(t, small())
	for i := range int64(32) {
		at := i * sec
		f.move(at, "bot", 50*i, 25*i)
		f.move(at+1, "human", 50*i, 50*(i%2)) // zigzag
		f.move(at+2, "still", 0, 0)           // no path: no window counts
	}
	require.Equal(t, []string{"bot"}, players(only(f.d.Evaluate(), DetStraight)))
	require.Zero(t, f.d.players["still"].windows)
}

func TestFastReactionsToAppearancesAreFlagged(t *testing.T) {
	f := newFeed(t, small())
	hit := func(at int64, p, target string) {
		f.ev(at, p, fsm.Change{Entity: target, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-10)}, set(p, "shot_at", at))
	}
	ms := int64(time.Millisecond)
	for i := range int64(4) {
		t0 := i * 10 * sec
		for _, n := range []string{"a", "b"} {
			f.ev(t0, "server", set(n+string(rune('0'+i)), "spawned", t0))
		}
		hit(t0+80*ms, "bot", "a"+string(rune('0'+i)))
		hit(t0+90*ms, "bot", "a"+string(rune('0'+i))) // not a reaction: the same appearance
		hit(t0+400*ms, "human", "b"+string(rune('0'+i)))
		hit(t0+500*ms, "human", "ghost") // never appeared
	}
	// The same target's name in another world appearing just before a
	// hit is not what the hit reacts to.
	f.d.Observe(&fsm.Event{World: "other", Seq: 1, Time: 40*sec - 1, Player: "server", Status: fsm.StatusApplied,
		Changes: []fsm.Change{set("b3", "spawned", 0)}})
	hit(40*sec, "human", "b3")
	flags := only(f.d.Evaluate(), DetReaction)
	require.Equal(t, []string{"bot"}, players(flags))
	require.Equal(t, 4, f.d.players["human"].reactions)
	require.InDelta(t, 4*math.Log(2), f.d.players["human"].logReact, 1e-9, "400 ms: twice the median")
	require.Equal(t, 4, f.d.players["bot"].reactions)
	require.InDelta(t, 2*math.Log(2.5)/0.25, flags[0].Score, 1e-9, "√4 × ln(200/80) / 0.25")
	require.Equal(t, 8, f.d.players["bot"].hits)
}

func TestAReactionIsTimedToTheFirstShotNotTheFirstHit(t *testing.T) {
	f := newFeed(t, small()) // 3 reactions at least; z ≥ 3
	ms := int64(time.Millisecond)
	hit := func(at int64, p, target string) {
		f.ev(at, p, fsm.Change{Entity: target, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-10)}, set(p, "shot_at", at))
	}
	miss := func(at int64, p string) { f.ev(at, p, set(p, "shot_at", at)) }
	for i := range int64(4) {
		t0 := 10*sec + i*10*sec
		a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		miss(t0-2*sec, "bot") // before the appearance: not a shot at it
		miss(t0-2*sec, "human")
		f.ev(t0, "server", set(a, "spawned", t0), set(b, "spawned", t0))
		// The aimbot fires at 100 ms and misses, hits at 320 ms; the
		// human fires at 400 ms and hits at once.
		miss(t0+100*ms, "bot")
		hit(t0+320*ms, "bot", a)
		hit(t0+400*ms, "human", b)
	}
	flags := only(f.d.Evaluate(), DetReaction)
	require.Equal(t, []string{"bot"}, players(flags))
	require.InDelta(t, 4*math.Log(0.5), f.d.players["bot"].logReact, 1e-9, "100 ms, not 320")
	require.InDelta(t, 4*math.Log(2), f.d.players["human"].logReact, 1e-9)
}

func TestAReactionAfterMoreShotsThanRememberedIsTimedToTheOldestRemembered(t *testing.T) {
	f := newFeed(t, small())
	ms := int64(time.Millisecond)
	f.ev(0, "server", set("a", "spawned", 0))
	for i := range int64(shotMemory + 2) {
		f.ev(100*ms+i*50*ms, "p", set("p", "shot_at", 0)) // misses from 100 ms
	}
	at := 100*ms + (shotMemory+2)*50*ms
	f.ev(at, "p", fsm.Change{Entity: "a", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-10)}, set("p", "shot_at", at))
	p := f.d.players["p"]
	require.Equal(t, 1, p.reactions)
	require.InDelta(t, math.Log(250.0/200), p.logReact, 1e-9, "the shots from 100 to 200 ms are forgotten: 250 ms is the first remembered")
}

func TestAppearancesOlderThanTheWindowAreForgottenAndNotReactedTo(t *testing.T) {
	f := newFeed(t, small())
	win := int64(small().Reaction.Window)
	f.ev(0, "server", set("old", "spawned", 0))
	f.ev(10, "server", set("late", "spawned", 10))
	f.ev(win+20, "p", fsm.Change{Entity: "late", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1)}, set("p", "shot_at", 1))
	require.Zero(t, f.d.players["p"].reactions, "a hit after the window is no reaction")
	f.ev(win+10, "server", set("new", "spawned", win+10))
	f.d.Evaluate()
	require.Equal(t, []string{"late", "new"}, keys(f.d.appear), "late is one window older than the newest, old more")
	f.ev(win+11, "server", set("new", "spawned", win+11))
	f.d.Evaluate()
	require.Equal(t, []string{"new"}, keys(f.d.appear), "late is now one window and 1 ns older")
}

func keys(m map[entityRef]int64) []string {
	var out []string
	for k := range m {
		out = append(out, k.entity)
	}
	slices.Sort(out)
	return out
}

func shots(f *feed, p string, n, hits int) {
	for i := range n {
		c := []fsm.Change{set(p, "shot_at", int64(i))}
		if i < hits {
			c = append(c, fsm.Change{Entity: "npc", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1)})
		}
		f.ev(int64(i), p, c...)
	}
}

func TestAnAccuracyFarAboveThePopulationsIsFlagged(t *testing.T) {
	f := newFeed(t, small())
	for i, h := range []int{3, 4, 5, 3, 4, 5, 3, 4, 5, 4} {
		shots(f, "h"+string(rune('a'+i)), 20, h)
	}
	shots(f, "aim", 20, 19)
	shots(f, "few", 5, 5) // too few shots to judge
	flags := only(f.d.Evaluate(), DetAccuracy)
	require.Equal(t, []string{"aim"}, players(flags))
	// The 90th percentile of the 11 hit ratios (the 10th of them sorted)
	// is 5 of 20: 19 hits of 20 against 0.25.
	require.InDelta(t, 0.25, f.d.acc.rate, 0)
	require.InDelta(t, (19-5)/math.Sqrt(20*0.25*0.75), flags[0].Score, 1e-9)
}

func TestAnAimScoreAddsFastReactionsToAHitRatioThatAloneIsNotEnough(t *testing.T) {
	f := newFeed(t, small()) // 10 shots, 3 players, 3 reactions; z ≥ 3 each
	for i, h := range []int{3, 4, 5, 3, 4, 5, 3, 4, 5, 4} {
		shots(f, fmt.Sprintf("h%d", i), 20, h)
		shots(f, fmt.Sprintf("g%d", i), 20, h)
	}
	ms := int64(time.Millisecond)
	// 8 hits of 20 shots (against the population's 90th percentile of
	// 0.25: z = 1.55), the first three on targets that appeared react ms
	// before.
	aim := func(p string, react int64) {
		for i := range int64(20) {
			at := 100*sec + i*sec
			c := []fsm.Change{set(p, "shot_at", at)}
			if i < 8 {
				target := fmt.Sprintf("%s-npc%d", p, i)
				if i < 3 {
					f.ev(at-react*ms, "server", set(target, "spawned", at-react*ms))
				}
				c = append(c, fsm.Change{Entity: target, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1)})
			}
			f.ev(at, p, c...)
		}
	}
	aim("quick", 150) // reaction: √3 × ln(200/150) / 0.25 = 1.99, under 3 alone
	aim("slow", 400)
	flags := f.d.Evaluate()
	require.Empty(t, only(flags, DetReaction))
	acc := only(flags, DetAccuracy)
	require.Equal(t, []string{"quick"}, players(acc))
	hitZ := (8 - 20*0.25) / math.Sqrt(20*0.25*0.75)
	require.InDelta(t, hitZ+math.Sqrt(3)*math.Log(200.0/150)/0.25, acc[0].Score, 1e-9)
}

func TestHitRatiosAllOneOrAllZeroFlagNoOne(t *testing.T) {
	for _, hits := range []int{0, 20} {
		f := newFeed(t, small())
		for i := range 5 {
			shots(f, fmt.Sprintf("h%d", i), 20, hits)
		}
		require.Empty(t, only(f.d.Evaluate(), DetAccuracy), "a game without misses (or hits) has no rate to test against")
	}
}

func TestEqualAccuraciesFlagNoOne(t *testing.T) {
	f := newFeed(t, small())
	for i := range 5 {
		shots(f, "h"+string(rune('a'+i)), 20, 5)
	}
	require.Empty(t, f.d.Evaluate())
}

func TestAccountsMovingInLockstepAreFlaggedAndCrowdsAreNot(t *testing.T) {
	c := small()
	c.Lockstep.MaxGroup = 3
	f := newFeed(t, c)
	ms := int64(time.Millisecond)
	for i := range int64(12) {
		at := 5*sec + i*sec
		for _, p := range []string{"r1", "r2"} {
			f.move(at+ms, p, -40*i, 0)
		}
		f.move(at+2*ms, "alone", 40*i, 0)
		for _, p := range []string{"c1", "c2", "c3", "c4"} { // a crowd moving alike
			f.move(at+ms, p, 0, 40*i)
		}
	}
	flags := only(f.d.Evaluate(), DetLockstep)
	require.Equal(t, []string{"r1+r2"}, players(flags))
	require.Len(t, flags[0].Evidence, evidenceLen)
}

func TestTwoMovesOfOnePlayerInATickAreNotAPair(t *testing.T) {
	f := newFeed(t, small())
	for i := range int64(3) { // a baseline, then two moves by (0, 0)
		f.move(i, "p", 0, 0)
	}
	f.d.Evaluate()
	require.Empty(t, f.d.pairs)
}

func TestRoundDivRoundsToTheNearestQuantum(t *testing.T) {
	for _, c := range [][3]int64{{29, 20, 1}, {31, 20, 2}, {-29, 20, -1}, {-31, 20, -2}, {0, 20, 0}} {
		require.Equal(t, c[2], roundDiv(c[0], c[1]), c)
	}
}

func TestOnlyAppliedEventsCountAndDeletesAreIgnored(t *testing.T) {
	f := newFeed(t, small())
	f.d.Observe(&fsm.Event{World: "w", Seq: 1, Player: "p", Status: fsm.StatusRejected, Changes: []fsm.Change{set("p", "x", 1)}})
	require.Empty(t, f.d.players)
	f.ev(0, "p", fsm.Change{Entity: "p", Op: fsm.OpDelete})
	require.Empty(t, f.d.players)
}

func TestEvidenceKeepsTheLatestRefsOldestFirst(t *testing.T) {
	var r refs
	require.Empty(t, r.list())
	for i := range uint64(11) {
		r.add(Ref{"w", i})
	}
	l := r.list()
	require.Len(t, l, evidenceLen)
	require.Equal(t, uint64(3), l[0].Seq)
	require.Equal(t, uint64(10), l[evidenceLen-1].Seq)
}

func TestSinksTakeEveryFlag(t *testing.T) {
	var mem Memory
	var buf bytes.Buffer
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	_, err = NewMetrics(reg)
	require.Error(t, err, "registered twice")
	s := Sinks{&mem, Log{Logger: slog.New(slog.NewTextHandler(&buf, nil))}, m}
	fl := Flag{Detector: DetFunnel, Players: []string{"a", "b"}, Score: 3, Evidence: []Ref{{"w", 7}}}
	s.Flag(fl)
	s.Flag(fl)
	require.Equal(t, []Flag{fl, fl}, mem.Flags())
	require.Contains(t, buf.String(), "detector=funnel")
	require.InDelta(t, 2, testutil.ToFloat64(m.flags.WithLabelValues(DetFunnel)), 0)
}

// A flag a Runner hands out again from its checkpoint was logged and
// counted before the restart: only a sink that records it (Memory here,
// the moderation Recorder in a node) takes it again.
func TestLogAndMetricsSkipARestoredFlag(t *testing.T) {
	var mem Memory
	var buf bytes.Buffer
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	s := Sinks{&mem, Log{Logger: slog.New(slog.NewTextHandler(&buf, nil))}, m}
	fl := Flag{Detector: DetFunnel, Players: []string{"a", "b"}, Score: 3, Evidence: []Ref{{"w", 7}}, Restored: true}
	s.Flag(fl)
	require.Equal(t, []Flag{fl}, mem.Flags())
	require.Empty(t, buf.String())
	require.InDelta(t, 0, testutil.ToFloat64(m.flags.WithLabelValues(DetFunnel)), 0)
}

// sub returns its batches, then err.
type sub struct {
	batches [][]*fsm.Event
	err     error
}

func (s *sub) Next(ctx context.Context) ([]*fsm.Event, error) {
	if len(s.batches) == 0 {
		return nil, s.err
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

func TestFollowEvaluatesEveryNEventsAndReturnsTheFeedsError(t *testing.T) {
	c := small()
	c.Every = 2
	d, err := New(c)
	require.NoError(t, err)
	var batches [][]*fsm.Event
	for i := range 6 {
		batches = append(batches, []*fsm.Event{{World: "w", Seq: uint64(i + 1), Player: "f", Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: "f", Field: "items", Op: fsm.OpRemove, Value: fsm.String("x")},
				{Entity: "m", Field: "items", Op: fsm.OpAdd, Value: fsm.String("x")}}}})
	}
	fail := errors.New("feed ended")
	var mem Memory
	require.ErrorIs(t, d.Follow(context.Background(), &sub{batches: batches, err: fail}, &mem), fail)
	flags := mem.Flags()
	require.Len(t, flags, 1, "flagged once, at the evaluation after the fifth transfer")
	require.Equal(t, []string{"f", "m"}, flags[0].Players)
	require.Len(t, flags[0].Evidence, 6, "the sixth transfer was observed before the evaluation")
}

func TestEmptyFieldNamesTurnTheirDetectorsOff(t *testing.T) {
	c := small()
	c.Fields = Fields{}
	f := newFeed(t, c)
	for i := range int64(20) {
		f.move(i*sec, "p", 155*i, 0)
		f.ev(i*sec, "server", set("npc", "spawned", i*sec))
		f.ev(i*sec+1, "p", fsm.Change{Entity: "npc", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1)}, set("p", "shot_at", 1))
		give(f, "a", "b", "x")
		duel(f, "a", "b")
		f.ev(i*sec, "p", fsm.Change{Entity: "p", Op: fsm.OpDelete}) // a delete's empty field is no field
	}
	require.Empty(t, f.d.Evaluate())
	require.Empty(t, f.d.players)
	require.Empty(t, f.d.appear)
}

func TestARespawnOrAnotherWorldIsNoMove(t *testing.T) {
	f := newFeed(t, small())
	f.move(0, "p", 0, 0)
	f.move(sec, "p", 100, 0)
	f.ev(2*sec, "server", set("p", "x", 5000), set("p", "y", 5000)) // respawn
	f.ev(2*sec, "server", set("ghost", "x", 1))                     // no such player: nothing
	f.move(3*sec, "p", 5010, 5000)
	f.d.Observe(&fsm.Event{World: "other", Seq: 9, Time: 4 * sec, Player: "p", Status: fsm.StatusApplied,
		Changes: []fsm.Change{set("p", "x", -9000), set("p", "y", 0)}})
	f.move(5*sec, "p", 5020, 5000) // back in w: a start again, not a move
	p := f.d.players["p"]
	require.Equal(t, 2, p.moves)
	require.Zero(t, p.jumps)
	require.Equal(t, [2]int64{5020, 5000}, [2]int64{p.x, p.y})
	require.Nil(t, f.d.players["ghost"])
}

func TestIncomeThatNoShotExplainsIsFlagged(t *testing.T) {
	f := newFeed(t, small())
	gold := map[string]int64{}
	loot := func(at int64, p string, by int64) {
		gold[p] += by
		f.ev(at, p, fsm.Change{Entity: p, Field: "gold", Op: fsm.OpIncr, Value: fsm.Int(gold[p])})
	}
	ms := int64(time.Millisecond)
	loot(0, "hunter", 0) // first sight: the start
	loot(0, "farmer", 0)
	for i := range int64(12) {
		at := 10 * sec * (i + 1)
		f.ev(at, "hunter", set("hunter", "shot_at", at))
		loot(at+300*ms, "hunter", 10) // after a shot: earned
		loot(at+2*sec, "hunter", -5)  // spending is no income
		loot(at+5*sec, "farmer", 10)  // after no shot: unearned
	}
	loot(200*sec, "farmer", -1)
	f.d.Observe(&fsm.Event{World: "other", Seq: 99, Time: 201 * sec, Player: "farmer", Status: fsm.StatusApplied,
		Changes: []fsm.Change{{Entity: "farmer", Field: "gold", Op: fsm.OpIncr, Value: fsm.Int(5)}}}) // another world's counter: a start there
	flags := only(f.d.Evaluate(), DetEconomy)
	require.Equal(t, []string{"farmer"}, players(flags))
	require.InDelta(t, 1, flags[0].Score, 0)
	require.Equal(t, 12, f.d.players["farmer"].incomes)
	require.Equal(t, [2]int{12, 0}, [2]int{f.d.players["hunter"].incomes, f.d.players["hunter"].unearned})
}

func TestThePopulationIsCountedAgainWhenItGrowsByATenth(t *testing.T) {
	f := newFeed(t, small()) // accuracy: 10 shots, 3 players
	shots(f, "ha", 20, 4)
	shots(f, "hb", 20, 5)
	require.Empty(t, f.d.Evaluate(), "two players: too few to judge")
	for i := range 18 {
		shots(f, fmt.Sprintf("h%02d", i), 20, 4+i%3)
	}
	shots(f, "aim", 20, 19)
	require.Equal(t, []string{"aim"}, players(only(f.d.Evaluate(), DetAccuracy)))
	require.Equal(t, 21, f.d.acc.n)
	shots(f, "l1", 20, 5)
	shots(f, "l2", 20, 5)
	f.d.Evaluate()
	require.Equal(t, 21, f.d.acc.n, "23 is not more than 21 + 2: kept")
	shots(f, "l3", 20, 5)
	f.d.Evaluate()
	require.Equal(t, 24, f.d.acc.n, "24 is")
}

// A Config that Validate accepts must not flag a human by its window
// alone: Reaction.Window drops every reaction longer than it, so a window
// not far above Reaction.Median keeps only a human's quicker reactions,
// and their mean log lies below ln(Median) however human they are. A
// player reacting in 140 and 300 ms by turns (a geometric mean of 205 ms,
// above the 200 ms median) is not flagged with the default window; with a
// 250 ms one (above the median, still) only the 140 ms reactions count.
func TestAReactionWindowNearTheMedianDoesNotFlagAHuman(t *testing.T) {
	ms := int64(time.Millisecond)
	play := func(cfg Config) []string {
		f := newFeed(t, cfg)
		for i := range int64(16) {
			t0 := i * 10 * sec
			target := fmt.Sprintf("t%d", i)
			f.ev(t0, "server", set(target, "spawned", t0))
			r := 140 * ms
			if i%2 == 1 {
				r = 300 * ms
			}
			f.ev(t0+r, "human", fsm.Change{Entity: target, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-10)}, set("human", "shot_at", t0+r))
		}
		return players(only(f.d.Evaluate(), DetReaction))
	}
	require.Empty(t, play(small()), "the default window")
	cfg := small()
	cfg.Reaction.Window = 250 * time.Millisecond
	if cfg.Validate() == nil {
		require.Empty(t, play(cfg), "a window Validate accepts flags the same human")
	}
}
