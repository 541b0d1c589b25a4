package detect

// minSD is the smallest spread of hit ratios the accuracy detector
// divides by: below it the population is one ratio (and the running sums'
// rounding is all that is left).
const minSD = 1e-9

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
