package corpus

import (
	"fmt"
	"slices"
)

// world returns the world of round s: World, or arena(s+1) in sessions.
func (g *gen) world(s int) string {
	if g.p.Sessions > 1 {
		return fmt.Sprintf("%s%d", World, s+1)
	}
	return World
}

// rounds gives every player their further sessions (Params.Sessions): the
// players' counts are drawn in the cast's order, a group's members play as
// many as its first; round s (from 0) lasts day from s × day and is
// played in world arena(s+1). A player's session of round s starts at a
// draw within the round, their group's members' at its first's, and
// carries on their skill, aim and reaction, and their place, from their
// session before; an improver gets better (Params.Improvers) and an
// aimbot switches on in its round (Params.SwitchAfter).
func (g *gen) rounds(day int64, groups [][]int) {
	p, r := g.p, g.r
	first := slices.Clone(g.agents)
	counts := make([]int, len(first))
	for i := range counts {
		counts[i] = p.Sessions + r.IntN(max(p.SessionsMax, p.Sessions)-p.Sessions+1)
	}
	for _, grp := range groups {
		for _, j := range grp[1:] {
			counts[j] = counts[grp[0]]
		}
	}
	for i, a := range first {
		if a.switchAt > 0 {
			counts[i] = max(counts[i], a.switchAt+1)
		}
	}
	last := first
	for s := 1; s < slices.Max(counts); s++ {
		round := make([]*agent, len(first))
		for i, prev := range last {
			if counts[i] <= s {
				continue
			}
			a := *prev
			a.ring, a.follower, a.prev, a.world, a.session = nil, false, prev, g.world(s), s
			if a.improve > 0 {
				a.react *= 1 - a.improve
				a.acc = min(a.acc*(1+a.improve), 0.98)
			}
			if a.switchAt > 0 && s == a.switchAt {
				a.acc = a.cheatAcc
			}
			g.begin(&a, int64(s)*day+r.Int64N(day-g.session+1))
			round[i] = &a
			g.agents = append(g.agents, &a)
			if a.kind.Honest() {
				g.honest = append(g.honest, &a)
			}
		}
		for _, grp := range groups {
			if counts[grp[0]] <= s {
				continue
			}
			lead := round[grp[0]]
			var members []*agent
			for _, j := range grp {
				g.begin(round[j], lead.start)
				members = append(members, round[j])
			}
			g.group(lead.kind, members)
		}
		last = round
	}
}
