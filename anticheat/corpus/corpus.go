package corpus

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// Kind is a player's label.
type Kind string

// The labels: four honest skill levels, five kinds of cheater.
const (
	Novice    Kind = "novice"
	Casual    Kind = "casual"
	Regular   Kind = "regular"
	Pro       Kind = "pro"
	Aimbot    Kind = "aimbot"
	SpeedHack Kind = "speedhack"
	BotRing   Kind = "botring"
	WinTrade  Kind = "wintrade"
	Funnel    Kind = "funnel"
	GoldFarm  Kind = "goldfarm"
)

// Kinds lists every label, honest ones first.
var Kinds = []Kind{Novice, Casual, Regular, Pro, Aimbot, SpeedHack, BotRing, WinTrade, Funnel, GoldFarm}

// Honest reports whether k is an honest skill level.
func (k Kind) Honest() bool { return k == Novice || k == Casual || k == Regular || k == Pro }

// ErrParams is returned for Params Generate cannot make a corpus from.
var ErrParams = errors.New("gsd/anticheat/corpus: bad params")

// World is the corpus's world id.
const World = "arena"

// The arena's movement limits (anticheat.Speed's parameters).
const (
	PerSecond = 500
	Slack     = 10
	MaxStep   = 300
)

// Span is a range [Lo, Hi] a parameter is drawn from, uniformly.
type Span struct{ Lo, Hi float64 }

func (s Span) draw(r *rand.Rand) float64 { return s.Lo + (s.Hi-s.Lo)*r.Float64() }

// Params describe a corpus.
type Params struct {
	Seed       uint64
	Honest     int           // honest players, a quarter per skill level
	Concurrent int           // honest players in a session at once
	Session    time.Duration // each player's session
	Friends    float64       // share of honest players in a pair of friends

	Aimbots, SpeedHackers, Rings, WinTraders, Funnels, GoldFarmers int // cheaters (pairs, rings, funnels)

	AimAccuracy Span          // aimbot's hit ratio
	AimReaction Span          // aimbot's reaction, milliseconds
	SpeedNear   float64       // speed hack: share of moves at 92-100% of the limit
	SpeedRest   float64       // speed hack: share of moves after a rest (a jump)
	RingSize    int           // accounts in a bot ring
	RingJitter  int64         // ring: each account's delta ± this many units
	RingLag     time.Duration // ring: each account's move up to this late
	TradeMeets  int           // win-traders: duels with each other
	// TradeMeetsMax, when above TradeMeets, makes each pair's duels a
	// draw from [TradeMeets, TradeMeetsMax].
	TradeMeetsMax int
	TradeAlt      float64 // win-traders: chance the winner alternates
	// TradeOthers, when set, is how often (at least; up to twice that) a
	// win-trader duels someone else: 20 s when unset.
	TradeOthers time.Duration
	Feeders     int // funnel: accounts feeding one
	// FeedersMax, when above Feeders, makes each funnel's feeders a draw
	// from [Feeders, FeedersMax].
	FeedersMax int
	FeedGifts  Span    // funnel: gifts per feeder
	FeedBack   float64 // funnel: chance of a gift back per gift
	// FeedBackMax, when above FeedBack, makes each funnel's chance of a
	// gift back a draw from [FeedBack, FeedBackMax].
	FeedBackMax float64
	FarmEvery   Span // gold farmer: seconds between extra loot
	FarmGold    Span // gold farmer: gold per extra loot
	// FriendMeets and FriendMeetsMax, when FriendMeets is set, are the
	// range of duels two friends have with each other (6 to 14 when
	// unset): honest pairs that meet often, for the win-trading detector.
	FriendMeets, FriendMeetsMax int
	// Sessions and SessionsMax, when Sessions is above 1, make every
	// player play a draw from [Sessions, SessionsMax] sessions (a group's
	// members as many as its first), one per round: a round lasts as long
	// as the one-session corpus's day and is played in its own world
	// (arena1, arena2, …), and a player keeps their skill, aim, reaction
	// and place from one session to the next, and their group (a ring, a
	// pair, a funnel). With Sessions at 0 or 1 every player plays one
	// session in World, as in corpora A to F.
	Sessions, SessionsMax int
	// SwitchAfter and SwitchAfterMax, when SwitchAfter is set (in
	// sessions only), make every aimbot switch on partway: it plays its
	// first k sessions, k a draw from [SwitchAfter, SwitchAfterMax], as
	// an honest player of a skill level drawn uniformly, and cheats (aim
	// and reaction from AimAccuracy and AimReaction) in every session
	// after (at least one: it plays at least k+1 sessions).
	SwitchAfter, SwitchAfterMax int
	// Improvers is the share of honest players who get better from one
	// session to the next, as real players do: each draws a rate x from
	// Improve and, at each session after their first, reacts 1 − x times
	// as long and hits 1 + x times as often as in the one before.
	Improvers float64
	Improve   Span
}

// Validate reports Params Generate cannot make a corpus from.
func (p Params) Validate() error {
	switch {
	case p.Honest < 2 || p.Concurrent < 2:
		return fmt.Errorf("%w: fewer than 2 honest or concurrent players", ErrParams)
	case p.Session < 10*time.Second:
		return fmt.Errorf("%w: session under 10s", ErrParams)
	case p.RingSize < 2 && p.Rings > 0, p.Feeders < 1 && p.Funnels > 0:
		return fmt.Errorf("%w: a ring needs 2 accounts, a funnel a feeder", ErrParams)
	case p.FriendMeets < 0 || p.FriendMeets > 0 && p.FriendMeetsMax < p.FriendMeets:
		return fmt.Errorf("%w: friends' duels: a negative count or a range that ends before it starts", ErrParams)
	case p.Sessions < 0 || p.Sessions > 1 && p.SessionsMax < p.Sessions:
		return fmt.Errorf("%w: sessions: a negative count or a range that ends before it starts", ErrParams)
	case p.SwitchAfter < 0 || p.SwitchAfter > 0 && (p.Sessions < 2 || p.SwitchAfterMax < p.SwitchAfter):
		return fmt.Errorf("%w: switch: a negative count, a range that ends before it starts, or no sessions to switch in", ErrParams)
	case p.Improvers < 0 || p.Improvers > 1 || p.Improve.Lo < 0 || p.Improve.Hi < p.Improve.Lo || p.Improve.Hi >= 1:
		return fmt.Errorf("%w: improvers: a share outside [0, 1] or a rate outside [0, 1)", ErrParams)
	}
	return nil
}

func (p Params) rng() *rand.Rand { return rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)) }

// skill is an honest level's means.
type skill struct {
	acc   float64 // hit ratio
	react float64 // median reaction, ms
}

var skills = [...]skill{{0.15, 450}, {0.25, 350}, {0.35, 280}, {0.45, 220}}

// agent is one player.
type agent struct {
	id    string
	kind  Kind
	world string
	prev  *agent // the player's session before this one, until it is left
	start int64  // session start, ns from the corpus's start
	level int    // skill index 0..3, for duels
	// movement
	x, y, heading float64
	last, next    int64
	pace, turn    float64
	rest          float64
	moves         int
	ring          []*agent // a ring's leader: its members, itself first
	follower      bool     // a ring's member other than its leader
	// combat, duels, gifts
	acc, react   float64 // hit ratio, median reaction (ms)
	luck         float64 // loot factor
	farm         int64   // gold farmer: next extra loot
	engage, duel int64
	duelEvery    int64
	gift         int64
	// sessions: the round this session is of, the round an aimbot
	// switches on in (0: it cheats from the start) and the hit ratio it
	// then has, an honest improver's rate per session
	session, switchAt int
	cheatAcc          float64
	improve           float64
}

// pending is an event before its seq is known.
type pending struct {
	at      int64
	order   int
	world   string
	player  string
	changes []fsm.Change
}

type gen struct {
	p       Params
	r       *rand.Rand
	session int64
	agents  []*agent
	honest  []*agent  // sorted by start
	sched   []pending // group events, sorted by time
	out     []pending
	order   int
	npc     int
	item    int
	totals  map[string]int64 // entity and counter field → value
}

// t0 is the leader time of the corpus's start: 2026-01-01 UTC.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

const (
	second = int64(time.Second)
	ms     = int64(time.Millisecond)
)

// Generate makes the corpus of p, hands its events to emit in seq order
// and returns the players' labels.
func Generate(p Params, emit func(*fsm.Event)) (map[string]Kind, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	g := &gen{p: p, r: p.rng(), session: int64(p.Session), totals: map[string]int64{}}
	labels := g.cast()
	end := int64(0)
	for _, a := range g.agents {
		end = max(end, a.start+g.session)
	}
	seqs := map[string]uint64{}
	for slice := second; ; slice += second {
		for _, a := range g.agents {
			if a.start < slice && a.start+g.session > slice-second {
				g.act(a, min(slice, a.start+g.session))
			}
		}
		n := 0
		for n < len(g.sched) && g.sched[n].at < slice {
			n++
		}
		g.out = append(g.out, g.sched[:n]...)
		g.sched = g.sched[n:]
		last := slice >= end
		if last {
			g.out = append(g.out, g.sched...)
		}
		slices.SortFunc(g.out, byTime)
		n = 0
		for n < len(g.out) && (g.out[n].at < slice || last) {
			e := &g.out[n]
			for i := range e.changes {
				if c := &e.changes[i]; c.Op == fsm.OpIncr {
					k := c.Entity + "\x00" + c.Field
					g.totals[k] += c.Value.Int
					c.Value = fsm.Int(g.totals[k])
				}
			}
			seqs[e.world]++
			seq := seqs[e.world]
			emit(&fsm.Event{World: e.world, Seq: seq, Index: seq, Time: t0 + e.at, Player: e.player, ClientSeq: seq, Status: fsm.StatusApplied, Changes: e.changes})
			n++
		}
		g.out = slices.Delete(g.out, 0, n)
		if last {
			return labels, nil
		}
	}
}

func byTime(a, b pending) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.order, b.order)) }

func (g *gen) emit(to *[]pending, at int64, world, player string, changes ...fsm.Change) {
	g.order++
	*to = append(*to, pending{at: at, order: g.order, world: world, player: player, changes: changes})
}

func set(entity, field string, v int64) fsm.Change {
	return fsm.Change{Entity: entity, Field: field, Op: fsm.OpSet, Value: fsm.Int(v)}
}

func incr(entity, field string, by int64) fsm.Change {
	return fsm.Change{Entity: entity, Field: field, Op: fsm.OpIncr, Value: fsm.Int(by)}
}

// cast makes the players, their sessions and their groups' events.
func (g *gen) cast() map[string]Kind {
	p, r := g.p, g.r
	day := max(g.session, int64(p.Honest)*g.session/int64(p.Concurrent))
	var kinds []Kind
	var groups [][]int // indexes into kinds that share a session
	add := func(k Kind, n int) []int {
		var idx []int
		for range n {
			idx = append(idx, len(kinds))
			kinds = append(kinds, k)
		}
		return idx
	}
	for i := range p.Honest {
		add(Kinds[i%4], 1)
	}
	for i := range int(p.Friends * float64(p.Honest) / 2) {
		groups = append(groups, []int{2 * i, 2*i + 1})
	}
	add(Aimbot, p.Aimbots)
	add(SpeedHack, p.SpeedHackers)
	for range p.Rings {
		groups = append(groups, add(BotRing, p.RingSize))
	}
	for range p.WinTraders {
		groups = append(groups, add(WinTrade, 2))
	}
	for range p.Funnels {
		feeders := p.Feeders
		if p.FeedersMax > feeders {
			feeders += r.IntN(p.FeedersMax - feeders + 1)
		}
		groups = append(groups, add(Funnel, feeders+1))
	}
	add(GoldFarm, p.GoldFarmers)
	ids := r.Perm(len(kinds))
	labels := map[string]Kind{}
	g.agents = make([]*agent, len(kinds))
	for i, k := range kinds {
		a := g.newAgent(fmt.Sprintf("p%06d", ids[i]), k, r.Int64N(day-g.session+1))
		g.agents[i] = a
		labels[a.id] = k
		if k.Honest() {
			g.honest = append(g.honest, a)
		}
	}
	for _, grp := range groups {
		lead := g.agents[grp[0]]
		var members []*agent
		for _, j := range grp {
			m := g.agents[j]
			g.begin(m, lead.start)
			members = append(members, m)
		}
		g.group(lead.kind, members)
	}
	if p.Sessions > 1 {
		g.rounds(day, groups)
	}
	slices.SortStableFunc(g.honest, func(a, b *agent) int { return cmp.Compare(a.start, b.start) })
	slices.SortFunc(g.sched, byTime)
	return labels
}

func (g *gen) newAgent(id string, k Kind, start int64) *agent {
	r := g.r
	a := &agent{id: id, kind: k, world: g.world(0), level: 1, pace: 0.5 + 0.35*r.Float64(), turn: 0.25 + 0.45*r.Float64(),
		rest: 0.01 + 0.04*r.Float64(), heading: 2 * math.Pi * r.Float64(), duelEvery: 4 * second}
	g.begin(a, start)
	switch k {
	case Novice, Casual, Regular, Pro:
		a.level = slices.Index(Kinds, k)
	case Aimbot:
		a.level = 3
	case SpeedHack:
		a.rest = g.p.SpeedRest
	case WinTrade:
		a.duelEvery = cmp.Or(int64(g.p.TradeOthers), 20*second)
	}
	sk := skills[a.level]
	a.acc = min(max(sk.acc+0.04*r.NormFloat64(), 0.02), 0.98)
	a.react = sk.react * math.Exp(0.1*r.NormFloat64())
	a.luck = math.Exp(0.15 * r.NormFloat64())
	if k == Aimbot {
		a.acc = g.p.AimAccuracy.draw(r)
	}
	if k == Aimbot && g.p.SwitchAfter > 0 {
		a.switchAt = g.p.SwitchAfter + r.IntN(g.p.SwitchAfterMax-g.p.SwitchAfter+1)
		a.level, a.cheatAcc = r.IntN(4), a.acc
		sk = skills[a.level]
		a.acc = min(max(sk.acc+0.04*r.NormFloat64(), 0.02), 0.98)
		a.react = sk.react * math.Exp(0.1*r.NormFloat64())
	}
	if k.Honest() && g.p.Improvers > 0 && r.Float64() < g.p.Improvers {
		a.improve = g.p.Improve.draw(r)
	}
	return a
}

// begin starts a's session at start.
func (g *gen) begin(a *agent, start int64) {
	r := g.r
	a.start, a.last, a.next = start, start, start+r.Int64N(300*ms)
	a.engage, a.duel, a.gift = start+r.Int64N(3*second), start+r.Int64N(8*second), start+5*second+r.Int64N(30*second)
	a.farm = start + r.Int64N(second)
}

// group schedules what a group does together: friends duel and give each
// other gifts, win-traders trade wins, feeders feed their funnel; a ring
// moves as one.
func (g *gen) group(k Kind, m []*agent) {
	r, start := g.r, m[0].start
	at := func() int64 { return start + r.Int64N(g.session) }
	switch k {
	case BotRing:
		m[0].ring = m
		for _, f := range m[1:] {
			f.follower = true
		}
	case WinTrade:
		w := r.IntN(2)
		meets := g.p.TradeMeets
		if g.p.TradeMeetsMax > meets {
			meets += r.IntN(g.p.TradeMeetsMax - meets + 1)
		}
		for i := range meets {
			if i > 0 && r.Float64() < g.p.TradeAlt {
				w = 1 - w
			}
			g.duelAt(&g.sched, start+int64(i)*g.session/int64(meets)+r.Int64N(second), m[w], m[1-w])
		}
	case Funnel:
		back := g.p.FeedBack
		if g.p.FeedBackMax > back {
			back = Span{back, g.p.FeedBackMax}.draw(r)
		}
		for _, f := range m[1:] {
			for range int(g.p.FeedGifts.draw(r)) {
				t := at()
				g.giveAt(&g.sched, t, f, m[0])
				if r.Float64() < back {
					g.giveAt(&g.sched, t+second, m[0], f)
				}
			}
		}
	default: // friends
		lo, hi := 6, 14
		if g.p.FriendMeets > 0 {
			lo, hi = g.p.FriendMeets, g.p.FriendMeetsMax
		}
		for range lo + r.IntN(hi-lo+1) {
			w := r.IntN(2)
			g.duelAt(&g.sched, at(), m[w], m[1-w])
		}
		for range r.IntN(9) {
			w := r.IntN(2)
			g.giveAt(&g.sched, at(), m[w], m[1-w])
		}
	}
}

func (g *gen) duelAt(to *[]pending, t int64, w, l *agent) {
	g.emit(to, t, w.world, "server", incr(w.id, "wins", 1), incr(l.id, "losses", 1))
}

func (g *gen) giveAt(to *[]pending, t int64, from, to2 *agent) {
	g.item++
	item := fsm.String(fmt.Sprintf("i%d", g.item))
	g.emit(to, t, from.world, from.id,
		fsm.Change{Entity: from.id, Field: "items", Op: fsm.OpRemove, Value: item},
		fsm.Change{Entity: to2.id, Field: "items", Op: fsm.OpAdd, Value: item})
}

// act makes a's events up to until.
func (g *gen) act(a *agent, until int64) {
	if a.follower {
		return
	}
	g.moves(a, until)
	if a.ring != nil {
		return // bots farm: they only move
	}
	r := g.r
	for ; a.engage < until; a.engage += 2*second + r.Int64N(2*second) {
		g.fight(a, a.engage)
	}
	for ; a.duel < until; a.duel += a.duelEvery + r.Int64N(a.duelEvery) {
		if o := g.opponent(a, a.duel); o != nil {
			w, l := a, o
			if r.Float64() >= 0.5+0.1*float64(a.level-o.level) {
				w, l = o, a
			}
			g.duelAt(&g.out, a.duel, w, l)
		}
	}
	for ; a.kind == GoldFarm && a.farm < until; a.farm += int64(g.p.FarmEvery.draw(r) * float64(second)) {
		g.emit(&g.out, a.farm, a.world, a.id, incr(a.id, "gold", int64(g.p.FarmGold.draw(r))))
	}
	for ; a.gift < until; a.gift += 20*second + r.Int64N(40*second) {
		if o := g.opponent(a, a.gift); o != nil {
			g.giveAt(&g.out, a.gift, a, o)
		}
	}
}

// opponent returns a random honest player in session at t other than a,
// or nil.
func (g *gen) opponent(a *agent, t int64) *agent {
	lo, _ := slices.BinarySearchFunc(g.honest, t-g.session+1, func(x *agent, t int64) int { return cmp.Compare(x.start, t) })
	hi, _ := slices.BinarySearchFunc(g.honest, t+1, func(x *agent, t int64) int { return cmp.Compare(x.start, t) })
	if hi-lo < 2 {
		return nil
	}
	o := g.honest[lo+g.r.IntN(hi-lo)]
	if o == a {
		return nil
	}
	return o
}

// moves makes a's moves (and its ring's) up to until.
func (g *gen) moves(a *agent, until int64) {
	r, p := g.r, g.p
	for a.next < until {
		t := a.next
		el := min(t-a.last, 10*second)
		limit := Slack + PerSecond*float64(el)/1e9
		var ratio float64
		switch {
		case a.ring != nil:
			ratio = 0.5 + 0.3*r.Float64()
			a.heading += 0.05 * r.NormFloat64()
			if a.moves%40 == 39 {
				a.heading += math.Pi * (r.Float64() - 0.5)
			}
		case a.kind == SpeedHack && r.Float64() < p.SpeedNear:
			ratio = 0.92 + 0.08*r.Float64()
			a.heading += a.turn * r.NormFloat64()
		default:
			ratio = min(max(a.pace+0.15*r.NormFloat64(), 0.05), 1)
			a.heading += a.turn * r.NormFloat64()
		}
		dist := min(ratio*limit, MaxStep)
		dx, dy := math.Trunc(dist*math.Cos(a.heading)), math.Trunc(dist*math.Sin(a.heading))
		movers := a.ring
		if movers == nil {
			movers = []*agent{a}
		}
		for _, m := range movers {
			if m.prev != nil { // the player's first move of this session: from where they left
				m.x, m.y, m.heading, m.prev = m.prev.x, m.prev.y, m.prev.heading, nil
			}
			at := t
			jx, jy := 0.0, 0.0
			if m != a {
				if p.RingLag > 0 {
					at += r.Int64N(int64(p.RingLag))
				}
				if p.RingJitter > 0 {
					jx, jy = float64(r.Int64N(2*p.RingJitter+1)-p.RingJitter), float64(r.Int64N(2*p.RingJitter+1)-p.RingJitter)
				}
			}
			m.x += dx + jx
			m.y += dy + jy
			g.emit(&g.out, at, m.world, m.id, set(m.id, "x", int64(m.x)), set(m.id, "y", int64(m.y)), set(m.id, "moved_at", t0+at))
		}
		a.moves++
		a.last = t
		if r.Float64() < a.rest {
			a.next = t + 600*ms + r.Int64N(400*ms)
		} else {
			a.next = t + 150*ms + r.Int64N(300*ms)
		}
	}
}

// fight spawns a target for a at t and has a fire at it.
func (g *gen) fight(a *agent, t int64) {
	r := g.r
	g.npc++
	npc := fmt.Sprintf("npc%d", g.npc)
	g.emit(&g.out, t, a.world, "server", set(npc, "spawned", t0+t))
	react := a.react * math.Exp(0.25*r.NormFloat64())
	if a.kind == Aimbot && a.session >= a.switchAt {
		react = g.p.AimReaction.draw(r)
	}
	first := t + int64(react*float64(ms))
	last := first
	for i := range int64(4 + r.IntN(5)) {
		at := first + i*220*ms
		if r.Float64() < a.acc {
			g.emit(&g.out, at, a.world, a.id, incr(npc, "hp", -10), set(a.id, "shot_at", t0+at))
		} else {
			g.emit(&g.out, at, a.world, a.id, set(a.id, "shot_at", t0+at))
		}
		last = at
	}
	loot := float64(5+r.IntN(11)) * (1 + 0.2*float64(a.level)) * a.luck
	g.emit(&g.out, last+300*ms, a.world, a.id, incr(a.id, "gold", int64(loot)))
}
