package detect

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/gsd-dev/gsd/fsm"
)

// The detectors' names, as in Flag.Detector and the metrics' label.
const (
	DetSpeed    = "speed"
	DetJump     = "jump"
	DetStraight = "straight"
	DetReaction = "reaction"
	DetAccuracy = "accuracy"
	DetLockstep = "lockstep"
	DetWinTrade = "wintrade"
	DetFunnel   = "funnel"
)

// Detectors lists every detector's name.
var Detectors = []string{DetSpeed, DetJump, DetStraight, DetReaction, DetAccuracy, DetLockstep, DetWinTrade, DetFunnel}

// Ref names one committed event.
type Ref struct {
	World string
	Seq   uint64
}

// Flag is one detector's suspicion: the player (or the pair, sorted), a
// score (the detector's statistic: a share, a mean or a z-score) and the
// latest events that counted towards it, oldest first.
type Flag struct {
	Detector string
	Players  []string
	Score    float64
	Evidence []Ref
}

// evidenceLen bounds the evidence a flag carries.
const evidenceLen = 8

// refs keeps the last evidenceLen refs.
type refs struct {
	ring [evidenceLen]Ref
	n    int
}

func (r *refs) add(ref Ref) {
	r.ring[r.n%evidenceLen] = ref
	r.n++
}

func (r *refs) list() []Ref {
	if r.n <= evidenceLen {
		return slices.Clone(r.ring[:r.n])
	}
	i := r.n % evidenceLen
	return append(slices.Clone(r.ring[i:]), r.ring[:i]...)
}

// player is one account's counts.
type player struct {
	id string
	// movement
	moved               bool
	x, y, at            int64
	moves, near, jumps  int
	winX, winY          int64
	winPath             float64
	winN                int
	straight            int
	windows             int
	speedEv, jumpEv     refs
	straightEv          refs
	shots, hits         int
	reactions, fast     int
	reactedTo           string
	reactedAt           int64
	reactEv, accuracyEv refs
	matches             int
	dirty               bool // counted since the last evaluation
}

type pairKey struct{ a, b string } // a < b

// entityRef names an entity of a world (entities are per world; players,
// by their ids, are not).
type entityRef struct{ world, entity string }

// pair is what two accounts did together: lockstep moves, and matches
// between them (wins of a, alternations of the winner).
type pair struct {
	a, b     *player // a.id < b.id
	dirty    bool
	together int
	stepEv   refs
	matches  int
	winsA    int
	alts     int
	lastA    bool
	matchEv  refs
}

// edge is transfers from one account to another.
type edge struct {
	k     pairKey // from a to b
	dirty bool
	n     int
	ev    refs
}

type stepKey struct{ dx, dy int64 }

// steps are one world's moves of its current tick, grouped by delta.
type steps struct {
	tick   int64
	groups map[stepKey][]*player
	refs   map[*player]Ref
}

// Detector counts what the committed events show of each player and
// flags outliers. Its methods are safe for concurrent use.
type Detector struct {
	cfg Config

	mu      sync.Mutex
	players map[string]*player
	appear  map[entityRef]int64 // leader time an entity last appeared
	pairs   map[pairKey]*pair
	edges   map[pairKey]*edge // a → b, not sorted
	steps   map[string]*steps // per world: its events' ticks are in order
	flagged map[string]bool   // detector + players already flagged

	// What changed since the last evaluation: Evaluate judges only these,
	// so its cost follows the events, not the players ever seen.
	dirtyPlayers []*player
	dirtyPairs   []*pair
	dirtyEdges   []*edge

	// The population's hit ratios (players with at least MinShots shots),
	// kept as they change.
	accN          int
	accSum, accSq float64
}

// New returns a Detector.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{
		cfg: cfg, players: map[string]*player{}, appear: map[entityRef]int64{},
		pairs: map[pairKey]*pair{}, edges: map[pairKey]*edge{},
		steps: map[string]*steps{}, flagged: map[string]bool{},
	}, nil
}

func (d *Detector) player(id string) *player {
	p := d.players[id]
	if p == nil {
		p = &player{id: id}
		d.players[id] = p
	}
	return p
}

func (d *Detector) touch(p *player) {
	if !p.dirty {
		p.dirty = true
		d.dirtyPlayers = append(d.dirtyPlayers, p)
	}
}

// pair returns a's and b's pair (a != b), marked changed.
func (d *Detector) pair(a, b *player) *pair {
	if b.id < a.id {
		a, b = b, a
	}
	k := pairKey{a.id, b.id}
	pr := d.pairs[k]
	if pr == nil {
		pr = &pair{a: a, b: b}
		d.pairs[k] = pr
	}
	if !pr.dirty {
		pr.dirty = true
		d.dirtyPairs = append(d.dirtyPairs, pr)
	}
	return pr
}

// seen is what one event shows, read from its changes.
type seen struct {
	x, y           int64
	hasX, hasY     bool
	shot           bool
	hit            string
	from, to, item string
	winner, loser  string
}

// Observe counts one committed event. Only applied events count.
func (d *Detector) Observe(ev *fsm.Event) {
	if ev.Status != fsm.StatusApplied {
		return
	}
	f := &d.cfg.Fields
	var s seen
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range ev.Changes {
		c := &ev.Changes[i]
		own := c.Entity == ev.Player
		switch {
		case c.Field == "":
		case own && c.Field == f.X:
			s.x, s.hasX = c.Value.Int, true
		case own && c.Field == f.Y:
			s.y, s.hasY = c.Value.Int, true
		case own && c.Field == f.Shot:
			s.shot = true
		case !own && c.Field == f.Hit && c.Op == fsm.OpIncr:
			s.hit = c.Entity
		case c.Field == f.Appear:
			d.appear[entityRef{ev.World, c.Entity}] = ev.Time
		case c.Field == f.Items && c.Op == fsm.OpRemove:
			s.from, s.item = c.Entity, c.Value.Str
		case c.Field == f.Items && c.Op == fsm.OpAdd && c.Value.Str == s.item:
			s.to = c.Entity
		case c.Field == f.Wins && c.Op == fsm.OpIncr:
			s.winner = c.Entity
		case c.Field == f.Losses && c.Op == fsm.OpIncr:
			s.loser = c.Entity
		}
	}
	ref := Ref{ev.World, ev.Seq}
	if s.hasX || s.hasY {
		d.move(d.player(ev.Player), ev.Time, s, ref)
	}
	if s.shot {
		d.shoot(d.player(ev.Player), ev.Time, s.hit, ref)
	}
	if s.to != "" && s.to != s.from {
		k := pairKey{s.from, s.to}
		e := d.edges[k]
		if e == nil {
			e = &edge{k: k}
			d.edges[k] = e
		}
		e.n++
		e.ev.add(ref)
		if !e.dirty {
			e.dirty = true
			d.dirtyEdges = append(d.dirtyEdges, e)
		}
	}
	if s.winner != "" && s.loser != "" && s.winner != s.loser {
		d.match(s.winner, s.loser, ref)
	}
}

// move counts a move of p to the event's position.
func (d *Detector) move(p *player, at int64, s seen, ref Ref) {
	if !s.hasX {
		s.x = p.x
	}
	if !s.hasY {
		s.y = p.y
	}
	if !p.moved {
		p.moved, p.x, p.y, p.at = true, s.x, s.y, at
		return
	}
	dx, dy := s.x-p.x, s.y-p.y
	el := min(max(at-p.at, 0), int64(maxElapsed))
	p.x, p.y, p.at = s.x, s.y, at
	dist := math.Hypot(float64(dx), float64(dy))
	p.moves++
	d.touch(p)
	l := &d.cfg.Limits
	if limit := float64(l.Slack) + float64(l.PerSecond)*float64(el)/1e9; limit > 0 && dist >= d.cfg.Speed.NearMax*limit {
		p.near++
		p.speedEv.add(ref)
	}
	if l.MaxStep > 0 && dist >= d.cfg.Jump.Near*float64(l.MaxStep) {
		p.jumps++
		p.jumpEv.add(ref)
	}
	p.winX += dx
	p.winY += dy
	p.winPath += dist
	p.winN++
	if p.winN == d.cfg.Straight.Window {
		if p.winPath > 0 {
			st := math.Hypot(float64(p.winX), float64(p.winY)) / p.winPath
			p.windows++
			if st >= d.cfg.Straight.Min {
				p.straight++
				p.straightEv.add(ref)
			}
		}
		p.winX, p.winY, p.winPath, p.winN = 0, 0, 0, 0
	}
	d.lockstep(p, at, dx, dy, ref)
}

// minSD is the smallest spread of hit ratios the accuracy detector
// divides by: below it the population is one ratio (and the running sums'
// rounding is all that is left).
const minSD = 1e-9

// maxElapsed caps the time a move is credited, as anticheat.Speed does.
const maxElapsed = 10e9

// lockstep groups the moves of one tick of a world by their rounded
// delta; when the tick ends, every pair in a small group moved together
// once.
func (d *Detector) lockstep(p *player, at, dx, dy int64, ref Ref) {
	ls := &d.cfg.Lockstep
	st := d.steps[ref.World]
	if st == nil {
		st = &steps{groups: map[stepKey][]*player{}, refs: map[*player]Ref{}}
		d.steps[ref.World] = st
	}
	if tick := at / int64(ls.Tick); tick != st.tick {
		d.flushSteps(st)
		st.tick = tick
	}
	k := stepKey{roundDiv(dx, ls.Quantum), roundDiv(dy, ls.Quantum)}
	st.groups[k] = append(st.groups[k], p)
	st.refs[p] = ref
}

func roundDiv(n, q int64) int64 {
	if n < 0 {
		return -((-n + q/2) / q)
	}
	return (n + q/2) / q
}

func (d *Detector) flushSteps(st *steps) {
	for k, g := range st.groups {
		if len(g) >= 2 && len(g) <= d.cfg.Lockstep.MaxGroup {
			for i, a := range g {
				for _, b := range g[i+1:] {
					if a == b {
						continue
					}
					pr := d.pair(a, b)
					pr.together++
					pr.stepEv.add(st.refs[a])
					pr.stepEv.add(st.refs[b])
				}
			}
		}
		delete(st.groups, k)
	}
	clear(st.refs)
}

// shoot counts a shot of p, a hit when target is set, and the reaction to
// the target's appearance on the first hit after it.
func (d *Detector) shoot(p *player, at int64, target string, ref Ref) {
	d.touch(p)
	d.population(p, -1)
	p.shots++
	if target != "" {
		p.hits++
		p.accuracyEv.add(ref)
	}
	d.population(p, 1)
	if target == "" {
		return
	}
	t, ok := d.appear[entityRef{ref.World, target}]
	if !ok || at-t > int64(d.cfg.Reaction.Window) || (p.reactedTo == target && p.reactedAt == t) {
		return
	}
	p.reactedTo, p.reactedAt = target, t
	p.reactions++
	if at-t <= int64(d.cfg.Reaction.Fast) {
		p.fast++
		p.reactEv.add(ref)
	}
}

// population adds (sign 1) or takes (-1) p's hit ratio to or from the
// population's, when p has shot enough to count.
func (d *Detector) population(p *player, sign float64) {
	if p.shots < d.cfg.Accuracy.MinShots {
		return
	}
	a := float64(p.hits) / float64(p.shots)
	d.accN += int(sign)
	d.accSum += sign * a
	d.accSq += sign * a * a
}

// match counts a match won by w against l.
func (d *Detector) match(w, l string, ref Ref) {
	pw, pl := d.player(w), d.player(l)
	pw.matches++
	pl.matches++
	pr := d.pair(pw, pl)
	aWon := w < l
	if aWon {
		pr.winsA++
	}
	if pr.matches > 0 && aWon != pr.lastA {
		pr.alts++
	}
	pr.lastA = aWon
	pr.matches++
	pr.matchEv.add(ref)
}

// Evaluate compares the counts with the thresholds and returns the flags
// not returned before, sorted by detector and players.
func (d *Detector) Evaluate() []Flag {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.steps {
		d.flushSteps(st)
	}
	// Forget appearances no reaction can follow any more: older than the
	// window before the newest.
	var newest int64
	for _, t := range d.appear {
		newest = max(newest, t)
	}
	for e, t := range d.appear {
		if newest-t > int64(d.cfg.Reaction.Window) {
			delete(d.appear, e)
		}
	}
	var out []Flag
	add := func(det string, score float64, ev *refs, players ...string) {
		slices.Sort(players)
		key := det + "\x00" + strings.Join(players, "\x00")
		if d.flagged[key] {
			return
		}
		d.flagged[key] = true
		out = append(out, Flag{Detector: det, Players: players, Score: score, Evidence: ev.list()})
	}
	c := &d.cfg
	accN := d.accN
	mean, sd := 0.0, 0.0
	if accN > 0 {
		mean = d.accSum / float64(accN)
		sd = math.Sqrt(max(d.accSq/float64(accN)-mean*mean, 0))
	}
	for _, p := range d.dirtyPlayers {
		p.dirty = false
		if p.moves >= c.Speed.MinMoves && c.Limits.PerSecond > 0 {
			if s := float64(p.near) / float64(p.moves); s >= c.Speed.Share {
				add(DetSpeed, s, &p.speedEv, p.id)
			}
		}
		if p.moves >= c.Jump.MinMoves && c.Limits.MaxStep > 0 {
			if s := float64(p.jumps) / float64(p.moves); s >= c.Jump.Share {
				add(DetJump, s, &p.jumpEv, p.id)
			}
		}
		if p.windows >= c.Straight.MinWindows {
			if s := float64(p.straight) / float64(p.windows); s >= c.Straight.Share {
				add(DetStraight, s, &p.straightEv, p.id)
			}
		}
		if p.reactions >= c.Reaction.MinSamples && p.reactions > 0 {
			if s := float64(p.fast) / float64(p.reactions); s >= c.Reaction.Share {
				add(DetReaction, s, &p.reactEv, p.id)
			}
		}
		if accN >= c.Accuracy.MinPlayers && sd > minSD && p.shots >= c.Accuracy.MinShots {
			if z := (float64(p.hits)/float64(p.shots) - mean) / sd; z >= c.Accuracy.Z {
				add(DetAccuracy, z, &p.accuracyEv, p.id)
			}
		}
	}
	d.dirtyPlayers = d.dirtyPlayers[:0]
	for _, pr := range d.dirtyPairs {
		pr.dirty = false
		a, b := pr.a, pr.b
		if pr.together >= c.Lockstep.MinTogether {
			if s := float64(pr.together) / float64(max(min(a.moves, b.moves), 1)); s >= c.Lockstep.Share {
				add(DetLockstep, s, &pr.stepEv, a.id, b.id)
			}
		}
		if pr.matches >= c.WinTrade.MinMatches && float64(pr.matches) >= c.WinTrade.MinShare*float64(min(a.matches, b.matches)) {
			n := float64(pr.matches)
			oneWay := math.Abs(float64(pr.winsA)-n/2) / math.Sqrt(n/4)
			t := n - 1
			alt := (float64(pr.alts) - t/2) / math.Sqrt(t/4)
			if z := max(oneWay, alt); z >= c.WinTrade.Z {
				add(DetWinTrade, z, &pr.matchEv, a.id, b.id)
			}
		}
	}
	d.dirtyPairs = d.dirtyPairs[:0]
	for _, e := range d.dirtyEdges {
		e.dirty = false
		k := e.k
		if e.n < c.Funnel.MinTransfers {
			continue
		}
		back := 0
		if r := d.edges[pairKey{k.b, k.a}]; r != nil {
			back = r.n
		}
		if float64(back) <= c.Funnel.MaxReverse*float64(e.n) {
			add(DetFunnel, float64(e.n-back), &e.ev, k.a, k.b)
		}
	}
	d.dirtyEdges = d.dirtyEdges[:0]
	slices.SortFunc(out, func(x, y Flag) int {
		return cmp.Or(cmp.Compare(x.Detector, y.Detector), slices.Compare(x.Players, y.Players))
	})
	return out
}
