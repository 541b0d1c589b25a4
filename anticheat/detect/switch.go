package detect

import "math"

// sessionStats is what one player did in one world: the detectors' unit of a
// player's history (a match world is a session).
type sessionStats struct {
	world       string
	start       int64   // leader time of the player's first shot in it
	reactions   int     // timed reactions
	logReact    float64 // sum of their ln(reaction / Reaction.Median)
	shots, hits int
	react       faded // reactions weighed by the reactions after them in it
	aim         faded // shots (weights) and hits (sum), weighed by the shots after them in it
	aimReact    faded // reactions weighed by the shots after them in it: accuracy's reaction term
}

// sessionOf returns p's session in world, starting one at leader time at
// (kept in the order sessions started, the latest Switch.Sessions).
func (d *Detector) sessionOf(p *player, world string, at int64) *sessionStats {
	if p.cur < len(p.sessions) && p.sessions[p.cur].world == world {
		return &p.sessions[p.cur]
	}
	for i := range p.sessions {
		if p.sessions[i].world == world {
			p.cur = i
			return &p.sessions[i]
		}
	}
	i := len(p.sessions)
	for i > 0 && p.sessions[i-1].start > at {
		i--
	}
	if i == 0 && len(p.sessions) >= d.cfg.Switch.Sessions {
		return &d.discard // older than every session kept: not kept
	}
	p.sessions = append(p.sessions, sessionStats{})
	copy(p.sessions[i+1:], p.sessions[i:])
	p.sessions[i] = sessionStats{world: world, start: at}
	if len(p.sessions) > d.cfg.Switch.Sessions {
		p.sessions = append(p.sessions[:0], p.sessions[1:]...)
		i--
	}
	p.cur = i
	return &p.sessions[i]
}

// switchZ is p's change-point score, and false when no split of p's
// sessions has enough samples on both sides: for each split of the
// sessions (in the order they started) into earlier and later ones, the
// later ones' drop in mean log reaction below the earlier ones', less
// Switch.Drift per session between the two groups' middles, over
// Reaction.Sigma × √(1/n₁ + 1/n₂) (the two means' standard error for a
// player's own spread), plus the later ones' rise in hit ratio, less
// Switch.AccDrift per session between the middles, over the two ratios'
// pooled binomial standard error; the largest over the splits. A
// player's own earlier sessions are the reference, so a fast honest pro
// is judged against their own speed, and the drifts allow for the
// improvement an honest player shows.
func (d *Detector) switchZ(p *player) (float64, bool) {
	c, sigma := &d.cfg.Switch, d.cfg.Reaction.Sigma
	var all sessionStats
	for _, s := range p.sessions {
		all.reactions, all.logReact, all.shots, all.hits = all.reactions+s.reactions, all.logReact+s.logReact, all.shots+s.shots, all.hits+s.hits
	}
	gap := float64(len(p.sessions)) / 2 // sessions between the middles of the two sides of any split
	var before sessionStats
	best, ok := 0.0, false
	for _, s := range p.sessions[:len(p.sessions)-1] {
		before.reactions, before.logReact, before.shots, before.hits = before.reactions+s.reactions, before.logReact+s.logReact, before.shots+s.shots, before.hits+s.hits
		after := sessionStats{reactions: all.reactions - before.reactions, logReact: all.logReact - before.logReact, shots: all.shots - before.shots, hits: all.hits - before.hits}
		if min(before.reactions, after.reactions) < c.MinReactions || min(before.shots, after.shots) < c.MinShots {
			continue
		}
		n1, n2 := float64(before.reactions), float64(after.reactions)
		z := (before.logReact/n1 - after.logReact/n2 - c.Drift*gap) / (sigma * math.Sqrt(1/n1+1/n2))
		s1, s2 := float64(before.shots), float64(after.shots)
		pool := float64(before.hits+after.hits) / (s1 + s2)
		if se := math.Sqrt(pool * (1 - pool) * (1/s1 + 1/s2)); se > 0 {
			z += (float64(after.hits)/s2 - float64(before.hits)/s1 - c.AccDrift*gap) / se
		}
		if !ok || z > best {
			best, ok = z, true
		}
	}
	return best, ok
}
