package detect

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

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
	d.populations()
	for _, p := range d.dirtyPlayers {
		p.dirty = false
		if p.incomes >= c.Economy.MinSamples && p.incomes > 0 {
			if s := float64(p.unearned) / float64(p.incomes); s >= c.Economy.Share {
				add(DetEconomy, s, &p.incomeEv, p.id)
			}
		}
		if a, ok := d.hitRatio(p); ok {
			if z, ok := d.acc.z(a, c.Accuracy.MinPlayers); ok && z >= c.Accuracy.Z {
				add(DetAccuracy, z, &p.accuracyEv, p.id)
			}
		}
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
