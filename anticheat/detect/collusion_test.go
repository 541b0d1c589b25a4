package detect

import (
	"fmt"
	"math"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func duel(f *feed, w, l string) {
	f.ev(0, "server", fsm.Change{Entity: w, Field: "wins", Op: fsm.OpIncr, Value: fsm.Int(1)},
		fsm.Change{Entity: l, Field: "losses", Op: fsm.OpIncr, Value: fsm.Int(1)})
}

func TestWinTradingAndFeedingPairsAreFlaggedAndRivalsAreNot(t *testing.T) {
	f := newFeed(t, small())
	for i := range 14 {
		if i%2 == 0 { // trading: the winner alternates
			duel(f, "t1", "t2")
		} else {
			duel(f, "t2", "t1")
		}
		duel(f, "feeder", "booster") // one way
		if i%3 == 0 {                // rivals: neither, and they duel others too
			duel(f, "r1", "r2")
		} else {
			duel(f, "r2", "r1")
		}
		duel(f, "r1", fmt.Sprintf("o%d", i))
		duel(f, fmt.Sprintf("o%d", i), "r2")
	}
	duel(f, "self", "self") // not a match
	flags := only(f.d.Evaluate(), DetWinTrade)
	require.Equal(t, []string{"booster+feeder", "t1+t2"}, players(flags))
	require.Nil(t, f.d.players["self"])
}

func TestWinTradeWeighsResultsAndOpponentsTogether(t *testing.T) {
	f := newFeed(t, small()) // 6 matches at least; Q 0.8, shares 0.9 and 0.5, LLR ≥ 0
	play := func(a, b, winners string, others int) {
		for _, w := range winners {
			if w == '1' {
				duel(f, a, b)
			} else {
				duel(f, b, a)
			}
		}
		for i := range others {
			duel(f, a, fmt.Sprintf("%s-o%d", a, i))
			duel(f, fmt.Sprintf("%s-o%d", b, i), b)
		}
	}
	play("trade1", "trade2", "121212121212", 2) // alternating, and mostly each other
	play("busy1", "busy2", "121212121212", 14)  // alternating, but among many others: friends
	play("only1", "only2", "12211211221211", 0) // only each other, but coin flips
	flags := only(f.d.Evaluate(), DetWinTrade)
	require.Equal(t, []string{"trade1+trade2"}, players(flags))
	with, other := math.Log(0.9/0.5), math.Log(0.1/0.5)
	require.InDelta(t, 11*math.Log(1.6)+24*with+4*other, flags[0].Score, 1e-9)
	cfg := DefaultConfig()
	w := &cfg.WinTrade
	require.InDelta(t, 11*math.Log(1.6)+24*with+28*other, tradeLLR(f.d.pairs[pairKey{"busy1", "busy2"}], w), 1e-9)
	require.InDelta(t, 8*math.Log(1.6)+5*math.Log(0.4), tradeLLR(f.d.pairs[pairKey{"only1", "only2"}], w), 1e-9, "the results alone")
}

func TestAnAccountFedByManyIsAFunnelThoughNoFeederIsOneAlone(t *testing.T) {
	f := newFeed(t, small()) // 5 transfers together, 2 make a feeder, 10% back
	for i := range 3 {
		for _, from := range []string{"f1", "f2", "f3"} {
			give(f, from, "main", fmt.Sprintf("%s-%d", from, i))
		}
		give(f, "g1", "fair", fmt.Sprintf("g1-%d", i))
		give(f, "g2", "fair", fmt.Sprintf("g2-%d", i))
	}
	give(f, "once", "main", "once") // one gift: no feeder
	give(f, "fair", "g1", "back1")  // 1 back of 6: over 10%
	flags := only(f.d.Evaluate(), DetFunnel)
	require.Equal(t, []string{"f1+main", "f2+main", "f3+main"}, players(flags))
	require.InDelta(t, 9*math.Log(1.8), flags[0].Score, 1e-9, "9 forward, none back")
	give(f, "f4", "main", "late1")
	give(f, "f4", "main", "late2")
	require.Equal(t, []string{"f4+main"}, players(only(f.d.Evaluate(), DetFunnel)), "a feeder found later is flagged then")
}

func give(f *feed, from, to, item string) {
	f.ev(0, from, fsm.Change{Entity: from, Field: "items", Op: fsm.OpRemove, Value: fsm.String(item)},
		fsm.Change{Entity: to, Field: "items", Op: fsm.OpAdd, Value: fsm.String(item)})
}

func TestRepeatedOneWayTransfersAreFlaggedAndTradesAreNot(t *testing.T) {
	f := newFeed(t, small())
	for i := range 8 {
		item := "i" + string(rune('a'+i))
		give(f, "feeder", "main", item)
		give(f, "ann", "bob", item)
		give(f, "bob", "ann", item)
		give(f, "self", "self", item)
	}
	give(f, "main", "feeder", "back") // 1 back of 8: within 10%? no: 12.5%
	flags := only(f.d.Evaluate(), DetFunnel)
	require.Empty(t, flags)
	give(f, "feeder", "main", "more")
	give(f, "feeder", "main", "again")
	flags = only(f.d.Evaluate(), DetFunnel)
	require.Equal(t, []string{"feeder+main"}, players(flags))
	require.InDelta(t, 10*math.Log(1.8)+math.Log(0.2), flags[0].Score, 1e-9, "10 forward, 1 back")
}

// Friends give each other gifts either way, and a coin flip's run of 8
// one way (the counts' rule) comes by chance to a few of many pairs at
// some point of a long history; the default needs the directions'
// log-likelihood ratio at 8.5: 15 one way (15 ln 1.8 ≈ 8.82), not 8
// (4.70) nor 14 and 1 back (6.62), which the counts would flag.
func TestAShortOneWayRunBetweenFriendsIsNotAFunnelAndALongOneIs(t *testing.T) {
	f := newFeed(t, DefaultConfig())
	for i := range 8 {
		give(f, "ann", "bob", fmt.Sprintf("a%d", i))
	}
	for i := range 14 {
		give(f, "cat", "dan", fmt.Sprintf("c%d", i))
	}
	give(f, "dan", "cat", "back")
	require.Empty(t, only(f.d.Evaluate(), DetFunnel))
	for i := range 7 {
		give(f, "ann", "bob", fmt.Sprintf("more%d", i))
	}
	flags := only(f.d.Evaluate(), DetFunnel)
	require.Equal(t, []string{"ann+bob"}, players(flags))
	require.InDelta(t, funnelLLR(15, 0, 0.1), flags[0].Score, 1e-9)
	require.GreaterOrEqual(t, flags[0].Score, DefaultConfig().Funnel.LLR)
}

func TestAFunnelModelWithoutAChanceOfGiftsBackIsRefused(t *testing.T) {
	for _, back := range []float64{0, 0.5, -1} {
		c := DefaultConfig()
		c.Funnel.Back = back
		_, err := New(c)
		require.ErrorIs(t, err, ErrConfig, back)
	}
}
