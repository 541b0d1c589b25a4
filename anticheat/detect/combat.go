package detect

import (
	"math"
	"slices"
	"time"
)

// shotMemory is how many of a player's last shots are kept to time a
// reaction: a miss names no target, so the first hit on a target names
// it for the shots before it.
const shotMemory = 8

// shoot counts a shot of p, a hit when target is set, and, on the first
// hit on a target after its appearance, the reaction to it: the time from
// the appearance to p's first shot since (a miss names no target, so the
// shots before the first hit are taken to be at it; an aimbot whose first
// shot misses is not slow), kept as its log against Reaction.Median; not
// timed when p was busy with another target (Reaction.Busy).
func (d *Detector) shoot(p *player, at int64, target string, ref Ref) {
	d.touch(p)
	p.shots++
	if p.shots == d.cfg.Accuracy.MinShots {
		d.accCount++
	}
	p.shot, p.lastShot = true, max(at, p.lastShot)
	p.shotAt[p.shotN%shotMemory], p.shotIn[p.shotN%shotMemory] = at, ref.World
	p.shotN++
	s := d.sessionOf(p, ref.World, at)
	s.shots++
	if target == "" {
		return
	}
	p.hits++
	s.hits++
	p.accuracyEv.add(ref)
	hit, prev, prevAt := entityRef{ref.World, target}, p.hit, p.hitAt
	p.hit, p.hitAt = hit, at
	t, ok := d.appear[hit]
	if !ok || at-t > int64(d.cfg.Reaction.Window) || (p.reactedTo == target && p.reactedAt == t) {
		return
	}
	p.reactedTo, p.reactedAt = target, t
	if prev.world == hit.world && prev != hit && prevAt >= t || d.cfg.Reaction.Busy > 0 && lastShotBefore(p, t, ref.World) > t-int64(d.cfg.Reaction.Busy) {
		// p hit another target since this one appeared, or was shooting
		// when it appeared: the shots since may be at the other one (a
		// miss names no target), so this reaction cannot be timed.
		return
	}
	p.reactions++
	// A reaction in the appearance's own instant is as fast as a
	// millisecond: the log needs a positive time.
	r := max(firstShotSince(p, t)-t, int64(time.Millisecond))
	l := math.Log(float64(r) / float64(d.cfg.Reaction.Median))
	p.logReact += l
	s.reactions++
	s.logReact += l
	p.switchEv.add(ref)
	d.weigh(p, at, l)
	if l < 0 {
		p.reactEv.add(ref)
	}
}

// weigh adds a reaction of log l at leader time at to p's weighed
// evidence: every reaction weighs 2^(−age / Reaction.HalfLife), its age
// taken from p's newest reaction, so the sums kept are those at the newest
// one whatever order p's worlds are read in (a Runner follows them side by
// side; a restart reads each from its start).
func (d *Detector) weigh(p *player, at int64, l float64) {
	w := 1.0
	if h := float64(d.cfg.Reaction.HalfLife); h > 0 {
		if at > p.reactAt {
			f := math.Exp2(-float64(at-p.reactAt) / h)
			p.reactW, p.reactWLog, p.reactAt = f*p.reactW, f*p.reactWLog, at
		} else {
			w = math.Exp2(-float64(p.reactAt-at) / h)
		}
	}
	p.reactW += w
	p.reactWLog += w * l
}

// reactionZ is the z-score of p's mean log reaction (over a positive
// weight) below the log of Reaction.Median, with the sample size in it:
// the likelihood-ratio test of a log-normal's location at a known spread
// (Reaction.Sigma), so many reactions a little faster than a quick human's
// weigh as much as a few much faster. Over weighed reactions (weights w ≤
// 1) it is Σ w ln(r/Median) / (Sigma × √Σ w): at most the exact weighed
// test's (whose denominator is √Σ w²), so fading never adds evidence.
func (d *Detector) reactionZ(p *player) float64 {
	return -p.reactWLog / (d.cfg.Reaction.Sigma * math.Sqrt(p.reactW))
}

// judgesReactions reports whether p has Reaction.MinSamples reactions,
// counted with their weights (rounded: a session's reactions, a few
// minutes old, weigh just under one each).
func (d *Detector) judgesReactions(p *player) bool {
	return p.reactW > 0 && math.Round(p.reactW) >= float64(d.cfg.Reaction.MinSamples)
}

// firstShotSince returns the earliest of p's remembered shots at or after
// t (p's latest shot is one: the hit).
func firstShotSince(p *player, t int64) int64 {
	first := p.lastShot
	for i := range min(p.shotN, shotMemory) {
		if s := p.shotAt[i]; s >= t && s < first {
			first = s
		}
	}
	return first
}

// earn counts p's currency at total: an increase since the last sight (in
// the same world: a counter is per world) is an income, unearned when it
// does not follow one of p's shots within Economy.Window.
func (d *Detector) earn(p *player, at, total int64, ref Ref) {
	if !p.earning || p.goldWorld != ref.World {
		p.earning, p.goldWorld, p.gold = true, ref.World, total
		return
	}
	delta := total - p.gold
	p.gold = total
	if delta <= 0 {
		return // spent
	}
	d.touch(p)
	p.incomes++
	if !p.shot || at-p.lastShot > int64(d.cfg.Economy.Window) {
		p.unearned++
		p.incomeEv.add(ref)
	}
}

// ceiling is the population's hit ratio at Accuracy.Quantile, over n
// players with enough shots: the rate an aim is tested against. A
// quantile, not a mean and spread, because honest players of several
// skill levels make a population of several modes, and the cheaters, a
// few of it, do not move it.
type ceiling struct {
	n    int
	rate float64
}

// z returns the binomial z-score of hits in shots (at least one) against
// the ceiling, and false when the population is too small (fewer than
// min) or its ceiling is no rate to test against (every hit ratio 0 or 1).
func (c ceiling) z(hits, shots, min int) (float64, bool) {
	if c.n < min || c.rate <= 0 || c.rate >= 1 {
		return 0, false
	}
	return binomialZ(hits, shots, c.rate), true
}

// ceilingOf returns the ceiling of xs at quantile q (xs sorted in place).
func ceilingOf(xs []float64, q float64) ceiling {
	if len(xs) == 0 {
		return ceiling{}
	}
	slices.Sort(xs)
	return ceiling{n: len(xs), rate: xs[min(int(q*float64(len(xs))), len(xs)-1)]}
}

// populations recomputes the hit ratios' ceiling from every player when
// the players who count grew by a tenth since the last time (often while
// a detector starts, rarely later), or popEvery × Config.Every events
// went by.
func (d *Detector) populations() {
	grown := d.accCount > d.acc.n+d.acc.n/10
	if !grown && d.events-d.popAt < uint64(popEvery*d.cfg.Every) {
		return
	}
	d.popAt = d.events
	var acc []float64
	for _, p := range d.players {
		if p.shots >= d.cfg.Accuracy.MinShots {
			acc = append(acc, float64(p.hits)/float64(p.shots))
		}
	}
	d.acc = ceilingOf(acc, d.cfg.Accuracy.Quantile)
}

// popEvery is how many evaluation periods (Config.Every events) the
// population's ceiling is kept before it is recomputed.
const popEvery = 10

// lastShotBefore returns the latest of p's remembered shots in world
// before t, or MinInt64.
func lastShotBefore(p *player, t int64, world string) int64 {
	last := int64(math.MinInt64)
	for i := range min(p.shotN, shotMemory) {
		if s := p.shotAt[i]; s < t && s > last && p.shotIn[i] == world {
			last = s
		}
	}
	return last
}
