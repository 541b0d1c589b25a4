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
	s.aimReact.age(d.aimKeep)
	if target == "" {
		s.aim.add(0, d.aimKeep)
		return
	}
	s.aim.add(1, d.aimKeep)
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
	s.react.add(l, d.reactKeep)
	s.aimReact.add(l, 1) // at this shot: aged by the shots after it
	if l < 0 {
		p.reactEv.add(ref)
	}
}

// faded is a sum of samples weighed by their age in a player's own play:
// each weighs keep^k, k the samples counted after it (keep = 2^(−1 /
// half-life in samples)), not by leader time. A session's sums are
// made in its world's order (a world's events are read in seq order
// however many worlds a Runner reads side by side), and history adds a
// player's sessions up in the order they started, so the sums are the
// same whatever order a player's worlds are read in; a pause weighs
// nothing, and the weights add up to at most 1 / (1 − keep) (about
// half-life / ln 2 samples) however much a player plays.
type faded struct {
	w, sum float64 // Σ weights and Σ weight × sample
}

// add ages the samples by one and adds x at full weight.
func (f *faded) add(x, keep float64) {
	f.w = keep*f.w + 1
	f.sum = keep*f.sum + x
}

// age ages the samples by one sample of another kind (a shot, for
// accuracy's reactions).
func (f *faded) age(keep float64) {
	f.w *= keep
	f.sum *= keep
}

// count is the weight of the samples, rounded.
func (f *faded) count() float64 { return math.Round(f.w) }

// keepOf is the weight a sample keeps per sample after it for a
// half-life of h samples: 1 (no fading) for 0.
func keepOf(h int) float64 {
	if h <= 0 {
		return 1
	}
	return math.Exp2(-1 / float64(h))
}

// history adds up the sums sum picks of p's sessions, each older session
// weighed by keep^n, n the samples (counted by n) of the sessions that
// started after it: the newest session's newest sample weighs 1.
func history(p *player, keep float64, sum func(*sessionStats) *faded, n func(*sessionStats) int) faded {
	var out faded
	m := 1.0
	for i := len(p.sessions) - 1; i >= 0; i-- {
		s := &p.sessions[i]
		f := sum(s)
		out.w += m * f.w
		out.sum += m * f.sum
		m *= math.Pow(keep, float64(n(s)))
	}
	return out
}

func sessionReact(s *sessionStats) *faded    { return &s.react }
func sessionAim(s *sessionStats) *faded      { return &s.aim }
func sessionAimReact(s *sessionStats) *faded { return &s.aimReact }
func sessionReactions(s *sessionStats) int   { return s.reactions }
func sessionShots(s *sessionStats) int       { return s.shots }

// logZ is the z-score of the mean log reaction of r (over a positive
// weight) below the log of Reaction.Median, with the sample size in it:
// the likelihood-ratio test of a log-normal's location at a known spread
// (Reaction.Sigma), so many reactions a little faster than a quick human's
// weigh as much as a few much faster. Over weighed reactions (weights w ≤
// 1) it is Σ w ln(r/Median) / (Sigma × √Σ w): at most the exact weighed
// test's (whose denominator is √Σ w²), so fading never adds evidence.
func (d *Detector) logZ(r *faded) float64 {
	return -r.sum / (d.cfg.Reaction.Sigma * math.Sqrt(r.w))
}

// reacts is p's reactions weighed by the reactions after each
// (Reaction.HalfLifeReactions).
func (d *Detector) reacts(p *player) faded {
	if d.reactKeep == 1 { // every reaction of the Detector's life, not only its sessions kept
		return faded{float64(p.reactions), p.logReact}
	}
	return history(p, d.reactKeep, sessionReact, sessionReactions)
}

// reactionZ is reaction's score of p: logZ over their faded reactions.
func (d *Detector) reactionZ(p *player) float64 {
	r := d.reacts(p)
	return d.logZ(&r)
}

// judges reports whether r holds Reaction.MinSamples reactions, counted
// with their weights.
func (d *Detector) judges(r *faded) bool {
	return r.w > 0 && r.count() >= float64(d.cfg.Reaction.MinSamples)
}

// reactionScore is reaction's score of p and whether p is judged (their
// reactions weigh Reaction.MinSamples).
func (d *Detector) reactionScore(p *player) (float64, bool) {
	r := d.reacts(p)
	if !d.judges(&r) {
		return 0, false
	}
	return d.logZ(&r), true
}

// aimZ is accuracy's score of p and whether p is judged: the weighed
// hits' binomial z-score against the population's ceiling over at least
// Accuracy.MinShots weighed shots, plus, over Reaction.MinSamples weighed
// reactions, their logZ (both weighed by the shots after them,
// Accuracy.HalfLifeShots). As logZ, the
// weighed z-score's denominator is √Σ w, not √Σ w², so fading never adds
// evidence: an honest player's score is that of their recent shots.
func (d *Detector) aimZ(p *player) (float64, bool) {
	a, r := faded{float64(p.shots), float64(p.hits)}, faded{float64(p.reactions), p.logReact}
	if d.aimKeep < 1 {
		a, r = history(p, d.aimKeep, sessionAim, sessionShots), history(p, d.aimKeep, sessionAimReact, sessionShots)
	}
	if a.w <= 0 || a.count() < float64(d.cfg.Accuracy.MinShots) {
		return 0, false
	}
	z, ok := d.acc.z(a.sum, a.w, d.cfg.Accuracy.MinPlayers)
	if ok && d.judges(&r) {
		z += d.logZ(&r)
	}
	return z, ok
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

// z returns the binomial z-score of hits in shots (positive, both
// possibly weighed) against the ceiling, and false when the population is
// too small (fewer than min) or its ceiling is no rate to test against
// (every hit ratio 0 or 1).
func (c ceiling) z(hits, shots float64, min int) (float64, bool) {
	if c.n < min || c.rate <= 0 || c.rate >= 1 {
		return 0, false
	}
	return (hits - shots*c.rate) / math.Sqrt(shots*c.rate*(1-c.rate)), true
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
