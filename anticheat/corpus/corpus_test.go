package corpus

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// digest generates p's corpus and returns a hash of its events, their
// count and the labels, checking the events' order on the way (each
// world's seqs count from 1).
func digest(t *testing.T, p Params) (uint64, int, map[string]Kind) {
	h := fnv.New64a()
	n := 0
	seqs := map[string]uint64{}
	var last int64
	labels, err := Generate(p, func(ev *fsm.Event) {
		n++
		seqs[ev.World]++
		require.Equal(t, seqs[ev.World], ev.Seq)
		require.GreaterOrEqual(t, ev.Time, last, "leader time never goes back")
		last = ev.Time
		fmt.Fprintf(h, "%s %d %d %s %v\n", ev.World, ev.Seq, ev.Time, ev.Player, ev.Changes)
	})
	require.NoError(t, err)
	return h.Sum64(), n, labels
}

func small(p Params) Params {
	p.Concurrent, p.Session = 20, 20*time.Second
	p.Aimbots, p.SpeedHackers, p.Rings, p.WinTraders, p.Funnels, p.GoldFarmers = 2, 2, 1, 1, 1, 2
	return p
}

func TestACorpusIsTheSameForTheSameSeedAndDiffersForAnother(t *testing.T) {
	a1, n, labels := digest(t, small(A(40)))
	a2, n2, _ := digest(t, small(A(40)))
	require.Equal(t, a1, a2)
	require.Equal(t, n, n2)
	b, _, _ := digest(t, small(B(40)))
	require.NotEqual(t, a1, b)
	c, _, cLabels := digest(t, small(C(40)))
	require.NotEqual(t, a1, c)
	require.NotEqual(t, b, c)
	cCount := map[Kind]int{}
	for _, k := range cLabels {
		cCount[k]++
	}
	require.Equal(t, 6, cCount[BotRing], "C's rings have 6 accounts")
	require.Equal(t, 5, cCount[Funnel], "C's funnels have 4 feeders and the account they feed")
	count := map[Kind]int{}
	for _, k := range labels {
		count[k]++
	}
	require.Equal(t, map[Kind]int{Novice: 10, Casual: 10, Regular: 10, Pro: 10, Aimbot: 2, SpeedHack: 2, BotRing: 5, WinTrade: 2, Funnel: 6, GoldFarm: 2}, count)
}

func TestHonestIsTrueForTheSkillLevelsOnly(t *testing.T) {
	for i, k := range Kinds {
		require.Equal(t, i < 4, k.Honest(), k)
	}
}

func TestBadParamsAreRefused(t *testing.T) {
	for name, mut := range map[string]func(*Params){
		"honest":  func(p *Params) { p.Honest = 1 },
		"session": func(p *Params) { p.Session = time.Second },
		"ring":    func(p *Params) { p.RingSize = 1 },
		"funnel":  func(p *Params) { p.Feeders = 0 },
		"friends": func(p *Params) { p.FriendMeets, p.FriendMeetsMax = 8, 7 },
		"meets":   func(p *Params) { p.FriendMeets = -1 },
	} {
		p := A(10)
		mut(&p)
		_, err := Generate(p, func(*fsm.Event) {})
		require.ErrorIs(t, err, ErrParams, name)
	}
}

func TestNoOpponentWhenTooFewHonestPlayersAreInSession(t *testing.T) {
	g := &gen{session: 10, r: A(2).rng()}
	a := &agent{start: 0}
	require.Nil(t, g.opponent(a, 5))
	g.honest = []*agent{a, {start: 0}}
	seen := map[*agent]int{}
	for range 50 {
		seen[g.opponent(a, 5)]++
	}
	require.Equal(t, 2, len(seen), "another player, or nil when it drew a itself")
	require.Zero(t, seen[a])
}

func TestACheatersMovesStayWithinTheLimits(t *testing.T) {
	type pos struct{ x, y, at int64 }
	last := map[string]pos{}
	_, err := Generate(small(B(40)), func(ev *fsm.Event) {
		if len(ev.Changes) != 3 || ev.Changes[2].Field != "moved_at" {
			return
		}
		p := pos{ev.Changes[0].Value.Int, ev.Changes[1].Value.Int, ev.Time}
		if l, ok := last[ev.Player]; ok {
			dx, dy := float64(p.x-l.x), float64(p.y-l.y)
			el := float64(min(p.at-l.at, int64(10*time.Second))) / 1e9
			limit := min(Slack+PerSecond*el, MaxStep) + 2*4 // ring jitter, lag
			require.LessOrEqual(t, dx*dx+dy*dy, limit*limit, ev.Player)
		}
		last[ev.Player] = p
	})
	require.NoError(t, err)
}

func TestDsWinTradersAndFunnelsVaryWithinTheirSpans(t *testing.T) {
	p := small(D(40))
	p.WinTraders, p.Funnels, p.Session = 6, 6, time.Minute
	duels := map[[2]string]int{}
	givers := map[string]map[string]bool{}
	var events []*fsm.Event
	labels, err := Generate(p, func(ev *fsm.Event) { events = append(events, ev) })
	require.NoError(t, err)
	for _, ev := range events {
		var w, l, from, to string
		for _, c := range ev.Changes {
			switch {
			case c.Field == "wins":
				w = c.Entity
			case c.Field == "losses":
				l = c.Entity
			case c.Field == "items" && c.Op == fsm.OpRemove:
				from = c.Entity
			case c.Field == "items" && c.Op == fsm.OpAdd:
				to = c.Entity
			}
		}
		if labels[w] == WinTrade && labels[l] == WinTrade {
			duels[[2]string{min(w, l), max(w, l)}]++
		}
		if labels[from] == Funnel && labels[to] == Funnel {
			if givers[to] == nil {
				givers[to] = map[string]bool{}
			}
			givers[to][from] = true
		}
	}
	require.Len(t, duels, 6)
	sizes := map[int]bool{}
	for pair, n := range duels {
		require.GreaterOrEqual(t, n, 18, pair)
		require.LessOrEqual(t, n, 30, pair)
		sizes[n] = true
	}
	require.Greater(t, len(sizes), 1, "each pair draws its duels")
	funnels := map[int]bool{}
	total := 0
	for to, g := range givers {
		if len(g) < 2 {
			continue // a feeder, given back to by the account it feeds
		}
		require.LessOrEqual(t, len(g), 6, to)
		funnels[len(g)] = true
		total++
	}
	require.Equal(t, 6, total, "one account fed per funnel")
	require.Greater(t, len(funnels), 1, "each funnel draws its feeders")
}

func TestEsFriendsDuelEachOtherWithinTheirSpan(t *testing.T) {
	p := small(E(40))
	p.Session = time.Minute
	e, _, labels := digest(t, p)
	d, _, _ := digest(t, small(D(40)))
	require.NotEqual(t, d, e)
	count := map[Kind]int{}
	for _, k := range labels {
		count[k]++
	}
	require.Equal(t, 7, count[BotRing], "E's rings have 7 accounts")
	duels := map[[2]string]int{}
	_, err := Generate(p, func(ev *fsm.Event) {
		var w, l string
		for _, c := range ev.Changes {
			switch c.Field {
			case "wins":
				w = c.Entity
			case "losses":
				l = c.Entity
			}
		}
		if w != "" && labels[w].Honest() && labels[l].Honest() {
			duels[[2]string{min(w, l), max(w, l)}]++
		}
	})
	require.NoError(t, err)
	// Friends meet 8 to 20 times; random opponents once or twice.
	friends := 0
	for pair, n := range duels {
		if n >= 8 {
			friends++
			require.LessOrEqual(t, n, 20+2, pair)
		}
	}
	require.Equal(t, 2, friends, "a tenth of 40 honest players in pairs")
	p.FriendMeets, p.FriendMeetsMax = 30, 30
	_, err = Generate(p, func(ev *fsm.Event) {
		var w, l string
		for _, c := range ev.Changes {
			switch c.Field {
			case "wins":
				w = c.Entity
			case "losses":
				l = c.Entity
			}
		}
		if w != "" && labels[w].Honest() && labels[l].Honest() {
			duels[[2]string{min(w, l), max(w, l)}]--
		}
	})
	require.NoError(t, err)
	thirty := 0
	for _, n := range duels {
		if n <= -30+20 { // 30 duels now, at most 20 before
			thirty++
		}
	}
	require.Equal(t, 2, thirty, "each pair of friends duels FriendMeets times")
}

func TestFIsAnotherSeedWithTheHardestAimbotsYet(t *testing.T) {
	f := F(40)
	require.NoError(t, f.Validate())
	seeds := map[uint64]bool{f.Seed: true}
	for _, p := range []Params{A(40), B(40), C(40), D(40), E(40)} {
		require.False(t, seeds[p.Seed], "seed %d used twice", p.Seed)
		seeds[p.Seed] = true
		require.Less(t, f.AimAccuracy.Lo, p.AimAccuracy.Lo, "seed %d", p.Seed)
		require.Greater(t, f.AimReaction.Hi, p.AimReaction.Hi, "seed %d", p.Seed)
	}
	e, _, _ := digest(t, small(E(40)))
	fd, _, _ := digest(t, small(f))
	require.NotEqual(t, e, fd)
}

// sessions generates p's corpus and returns, per player, the worlds they
// acted in, checking that each world's seqs count from 1 and leader time
// never goes back.
func sessions(t *testing.T, p Params) (map[string]map[string]bool, map[string]Kind) {
	seqs := map[string]uint64{}
	var last int64
	worlds := map[string]map[string]bool{}
	labels, err := Generate(p, func(ev *fsm.Event) {
		seqs[ev.World]++
		require.Equal(t, seqs[ev.World], ev.Seq, ev.World)
		require.GreaterOrEqual(t, ev.Time, last)
		last = ev.Time
		if ev.Player != "server" {
			if worlds[ev.Player] == nil {
				worlds[ev.Player] = map[string]bool{}
			}
			worlds[ev.Player][ev.World] = true
		}
	})
	require.NoError(t, err)
	return worlds, labels
}

func TestPlayersOfACorpusInSessionsPlayOneSessionPerRoundEachInItsWorld(t *testing.T) {
	p := small(S(40))
	worlds, labels := sessions(t, p)
	counts := map[int]int{}
	for id, k := range labels {
		if k == BotRing {
			continue // a ring's members only move
		}
		n := len(worlds[id])
		require.GreaterOrEqual(t, n, p.Sessions, id)
		require.LessOrEqual(t, n, p.SessionsMax, id)
		counts[n]++
		for w := range worlds[id] {
			require.Contains(t, []string{"arena1", "arena2", "arena3", "arena4", "arena5"}, w)
		}
		require.True(t, worlds[id]["arena1"] && worlds[id]["arena2"] && worlds[id]["arena3"], "rounds in order: %v", worlds[id])
	}
	require.Len(t, counts, 3, "3, 4 and 5 sessions all drawn: %v", counts)

	again, _ := sessions(t, p)
	require.Equal(t, worlds, again, "the same seed makes the same corpus")
	g, _ := sessions(t, small(G(40)))
	require.NotEqual(t, worlds, g)
}

func TestAGroupPlaysItsSessionsTogetherAndAPlayerGoesOnFromWhereTheyLeft(t *testing.T) {
	p := small(S(40))
	type at struct{ x, y int64 }
	first, last := map[string]at{}, map[string]at{} // player+world → position
	ringWorlds := map[string]map[string]bool{}
	labels, err := Generate(p, func(ev *fsm.Event) {
		x, y, ok := int64(0), int64(0), false
		for _, c := range ev.Changes {
			switch {
			case c.Entity == ev.Player && c.Field == "x":
				x, ok = c.Value.Int, true
			case c.Entity == ev.Player && c.Field == "y":
				y = c.Value.Int
			}
		}
		if !ok {
			return
		}
		k := ev.Player + " " + ev.World
		if _, seen := first[k]; !seen {
			first[k] = at{x, y}
		}
		last[k] = at{x, y}
		if ringWorlds[ev.Player] == nil {
			ringWorlds[ev.Player] = map[string]bool{}
		}
		ringWorlds[ev.Player][ev.World] = true
	})
	require.NoError(t, err)
	var ring []string
	for id, k := range labels {
		if k == BotRing {
			ring = append(ring, id)
		}
		for s := 2; s <= 5; s++ {
			now, ok := first[fmt.Sprintf("%s arena%d", id, s)]
			if !ok {
				continue
			}
			before := last[fmt.Sprintf("%s arena%d", id, s-1)]
			require.LessOrEqual(t, max(now.x-before.x, before.x-now.x, now.y-before.y, before.y-now.y), int64(MaxStep+2*p.RingJitter), "%s: session %d starts where %d ended", id, s, s-1)
		}
	}
	require.Len(t, ring, p.RingSize)
	for _, id := range ring[1:] {
		require.Equal(t, ringWorlds[ring[0]], ringWorlds[id], "a ring plays its sessions together")
	}
}

func TestBadSessionsAreRefused(t *testing.T) {
	p := S(40)
	p.SessionsMax = 2
	require.ErrorIs(t, p.Validate(), ErrParams)
	p.Sessions = -1
	require.ErrorIs(t, p.Validate(), ErrParams)
}

// cast makes p's players and their sessions without their events, and
// returns each player's sessions in round order.
func cast(p Params) map[string][]*agent {
	g := &gen{p: p, r: p.rng(), session: int64(p.Session), totals: map[string]int64{}}
	g.cast()
	out := map[string][]*agent{}
	for _, a := range g.agents {
		out[a.id] = append(out[a.id], a)
	}
	return out
}

func TestAnAimbotOfWPlaysHonestlyForItsFirstSessionsThenCheatsInEveryLaterOne(t *testing.T) {
	p := small(W(40))
	p.Aimbots = 40
	switches := map[int]int{}
	for id, ss := range cast(p) {
		a := ss[0]
		if a.kind != Aimbot {
			continue
		}
		k := a.switchAt
		require.GreaterOrEqual(t, k, p.SwitchAfter, id)
		require.LessOrEqual(t, k, p.SwitchAfterMax, id)
		require.Greater(t, len(ss), k, "%s cheats in at least one session", id)
		switches[k]++
		for s, x := range ss {
			require.Equal(t, s, x.session)
			if s < k {
				require.Equal(t, a.acc, x.acc, "%s session %d: honest aim", id)
				require.Less(t, x.acc, 0.6)
			} else {
				require.Equal(t, a.cheatAcc, x.acc, "%s session %d: the aimbot's aim", id)
				require.GreaterOrEqual(t, x.acc, p.AimAccuracy.Lo)
				require.LessOrEqual(t, x.acc, p.AimAccuracy.Hi)
			}
		}
	}
	require.Len(t, switches, 4, "switch points 1 to 4 all drawn: %v", switches)
}

func TestAnImproverOfWReactsFasterAndHitsMoreEachSession(t *testing.T) {
	p := small(W(40))
	p.Honest = 400
	improvers, honest := 0, 0
	for id, ss := range cast(p) {
		a := ss[0]
		if !a.kind.Honest() {
			continue
		}
		honest++
		if a.improve == 0 {
			for _, x := range ss {
				require.Equal(t, a.react, x.react, id)
			}
			continue
		}
		improvers++
		require.LessOrEqual(t, a.improve, p.Improve.Hi)
		for s := 1; s < len(ss); s++ {
			require.InDelta(t, ss[s-1].react*(1-a.improve), ss[s].react, 1e-9, id)
			require.InDelta(t, min(ss[s-1].acc*(1+a.improve), 0.98), ss[s].acc, 1e-9, id)
		}
	}
	require.InDelta(t, p.Improvers, float64(improvers)/float64(honest), 0.08)
}

func TestWHAndJAreReproducibleAndUnlikeTheOtherCorpora(t *testing.T) {
	w1, n, _ := digest(t, small(W(40)))
	w2, n2, _ := digest(t, small(W(40)))
	require.Equal(t, w1, w2)
	require.Equal(t, n, n2)
	h, _, _ := digest(t, small(H(40)))
	s, _, _ := digest(t, small(S(40)))
	g, _, _ := digest(t, small(G(40)))
	require.NotEqual(t, w1, h)
	require.NotEqual(t, w1, s)
	require.NotEqual(t, h, g)
	seeds := map[uint64]bool{}
	j, _, _ := digest(t, small(J(40)))
	require.NotEqual(t, h, j)
	require.NotEqual(t, w1, j)
	for _, p := range []Params{A(40), B(40), C(40), D(40), E(40), F(40), G(40), W(40), H(40), J(40)} {
		require.False(t, seeds[p.Seed], "seed %d used twice", p.Seed)
		seeds[p.Seed] = true
	}
	require.Less(t, H(40).AimAccuracy.Hi, W(40).AimAccuracy.Hi, "H's aimbots are weaker")
}

func TestBadSwitchAndImprovementAreRefused(t *testing.T) {
	for name, mut := range map[string]func(*Params){
		"negative switch":   func(p *Params) { p.SwitchAfter = -1 },
		"switch range":      func(p *Params) { p.SwitchAfterMax = 0 },
		"switch, 1 session": func(p *Params) { p.Sessions, p.SessionsMax = 1, 1 },
		"improvers":         func(p *Params) { p.Improvers = 1.5 },
		"negative rate":     func(p *Params) { p.Improve.Lo = -0.1 },
		"rate range":        func(p *Params) { p.Improve = Span{0.2, 0.1} },
		"rate of 1":         func(p *Params) { p.Improve.Hi = 1 },
	} {
		p := W(40)
		mut(&p)
		require.ErrorIs(t, p.Validate(), ErrParams, name)
	}
	require.NoError(t, W(40).Validate())
	require.NoError(t, H(40).Validate())
	require.NoError(t, J(40).Validate())
}

func TestKIsReproducibleItsAimbotsCheatFromTheStartAndItsSeedIsNew(t *testing.T) {
	k1, n, _ := digest(t, small(K(40)))
	k2, n2, _ := digest(t, small(K(40)))
	require.Equal(t, k1, k2)
	require.Equal(t, n, n2)
	j, _, _ := digest(t, small(J(40)))
	require.NotEqual(t, k1, j)
	p := K(40)
	require.NoError(t, p.Validate())
	require.Zero(t, p.SwitchAfter, "K's aimbots cheat from their first session")
	require.Greater(t, p.Improvers, 0.0)
	for _, q := range []Params{A(40), B(40), C(40), D(40), E(40), F(40), G(40), W(40), H(40), J(40)} {
		require.NotEqual(t, q.Seed, p.Seed)
	}
}

func TestLIsReproducibleItsSessionsAreLongerAndItsSeedIsNew(t *testing.T) {
	l1, n, _ := digest(t, small(L(40)))
	l2, n2, _ := digest(t, small(L(40)))
	require.Equal(t, l1, l2)
	require.Equal(t, n, n2)
	k, _, _ := digest(t, small(K(40)))
	require.NotEqual(t, l1, k)
	p := L(40)
	require.NoError(t, p.Validate())
	require.Zero(t, p.SwitchAfter, "L's aimbots cheat from their first session")
	require.Greater(t, p.Improvers, 0.0)
	require.Equal(t, 2*K(40).Session, p.Session, "twice the play between two pauses")
	for _, q := range []Params{A(40), B(40), C(40), D(40), E(40), F(40), G(40), W(40), H(40), J(40), K(40)} {
		require.NotEqual(t, q.Seed, p.Seed)
	}
}
