package detect

import (
	"math"
	"slices"
)

// shotMemory is how many of a player's last shots are kept to time a
// reaction: a miss names no target, so the first hit on a target names
// it for the shots before it.
const shotMemory = 8

// shoot counts a shot of p, a hit when target is set, and, on the first
// hit on a target after its appearance, the reaction to it: the time from
// the appearance to p's first shot since (a miss names no target, so the
// shots before the first hit are taken to be at it; an aimbot whose first
// shot misses is not slow).
func (d *Detector) shoot(p *player, at int64, target string, ref Ref) {
	d.touch(p)
	p.shots++
	if p.shots == d.cfg.Accuracy.MinShots {
		d.accCount++
	}
	p.shot, p.lastShot = true, max(at, p.lastShot)
	p.shotAt[p.shotN%shotMemory] = at
	p.shotN++
	if target == "" {
		return
	}
	p.hits++
	p.accuracyEv.add(ref)
	t, ok := d.appear[entityRef{ref.World, target}]
	if !ok || at-t > int64(d.cfg.Reaction.Window) || (p.reactedTo == target && p.reactedAt == t) {
		return
	}
	p.reactedTo, p.reactedAt = target, t
	p.reactions++
	if firstShotSince(p, t)-t <= int64(d.cfg.Reaction.Fast) {
		p.fast++
		p.reactEv.add(ref)
	}
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

// hitRatio returns p's hit ratio and whether p shot enough to be judged.
func (d *Detector) hitRatio(p *player) (float64, bool) {
	if p.shots < d.cfg.Accuracy.MinShots {
		return 0, false
	}
	return float64(p.hits) / float64(p.shots), true
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

// spread is a population's centre and scale, robustly: the median, and
// the median absolute deviation scaled to a normal standard deviation
// (1.4826), so that a few extreme players (the cheaters) shift neither.
type spread struct {
	n         int
	mid, unit float64
}

// minUnit is the smallest scale a z-score divides by: below it the
// population is one value.
const minUnit = 1e-9

// z returns x's robust z-score, and false when the population is too
// small (fewer than min) or has no spread.
func (s spread) z(x float64, min int) (float64, bool) {
	if s.n < min || s.unit < minUnit {
		return 0, false
	}
	return (x - s.mid) / s.unit, true
}

// spreadOf returns the spread of xs (sorted in place).
func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	slices.Sort(xs)
	mid := median(xs)
	for i, x := range xs {
		xs[i] = math.Abs(x - mid)
	}
	slices.Sort(xs)
	return spread{n: len(xs), mid: mid, unit: 1.4826 * median(xs)}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// populations recomputes the hit ratios' spread from every player when
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
		if a, ok := d.hitRatio(p); ok {
			acc = append(acc, a)
		}
	}
	d.acc = spreadOf(acc)
}

// popEvery is how many evaluation periods (Config.Every events) the
// population's spread is kept before it is recomputed.
const popEvery = 10
