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
	return d.evaluate()
}

// evaluate is Evaluate under d.mu.
func (d *Detector) evaluate() []Flag {
	for _, st := range d.steps {
		d.flushSteps(st)
	}
	// Forget appearances no reaction can follow any more: older than the
	// window before their world's newest. Per world: a Runner reads worlds
	// side by side, one far ahead of another in leader time while it
	// rebuilds from the archive, and the lagging world's appearances must
	// stay until its own hits come.
	newest := map[string]int64{}
	for e, t := range d.appear {
		newest[e.world] = max(newest[e.world], t)
	}
	for e, t := range d.appear {
		if newest[e.world]-t > int64(d.cfg.Reaction.Window) {
			delete(d.appear, e)
		}
	}
	var out []Flag
	add := func(det string, score float64, ev *refs, players ...string) {
		slices.Sort(players)
		key := det + "\x00" + strings.Join(players, "\x00")
		if _, ok := d.flagged[key]; ok {
			return
		}
		f := Flag{Detector: det, Players: players, Score: score, Evidence: ev.list()}
		if n := len(f.Evidence); n > 0 {
			f.Incarnation = d.marks[f.Evidence[n-1].World].inc
		}
		d.flagged[key] = f
		out = append(out, f)
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
		if z, ok := d.aimZ(p); ok && z >= c.Accuracy.Z {
			add(DetAccuracy, z, &p.accuracyEv, p.id)
		}
		if len(p.sessions) > 1 {
			if z, ok := d.switchZ(p); ok && z >= c.Switch.Z {
				add(DetSwitch, z, &p.switchEv, p.id)
			}
		}
		if p.moves >= c.Speed.MinMoves && c.Limits.PerSecond > 0 {
			if s := float64(p.near) / float64(p.moves); s >= c.Speed.Share {
				add(DetSpeed, s, &p.speedEv, p.id)
			}
		}
		if p.moves >= c.Jump.MinMoves && p.moves > 0 && c.Limits.MaxStep > 0 {
			if z := binomialZ(p.jumps, p.moves, c.Jump.Rate); z >= c.Jump.Z {
				add(DetJump, z, &p.jumpEv, p.id)
			}
		}
		if p.windows >= c.Straight.MinWindows {
			if s := float64(p.straight) / float64(p.windows); s >= c.Straight.Share {
				add(DetStraight, s, &p.straightEv, p.id)
			}
		}
		if s, ok := d.reactionScore(p); ok && s >= c.Reaction.Z {
			add(DetReaction, s, &p.reactEv, p.id)
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
		if pr.matches >= c.WinTrade.MinMatches && pr.matches > 0 && float64(pr.matches) >= c.WinTrade.MinShare*float64(min(a.matches, b.matches)) {
			if llr := tradeLLR(pr, &c.WinTrade); llr >= c.WinTrade.LLR {
				add(DetWinTrade, llr, &pr.matchEv, a.id, b.id)
			}
		}
	}
	d.dirtyPairs = d.dirtyPairs[:0]
	judged := map[string]bool{}
	for _, e := range d.dirtyEdges {
		e.dirty = false
		to := e.k.b
		if judged[to] {
			continue
		}
		judged[to] = true
		in, back := 0, 0
		for _, f := range d.into[to] {
			if f.n >= c.Funnel.MinEach {
				in += f.n
				if r := d.edges[pairKey{to, f.k.a}]; r != nil {
					back += r.n
				}
			}
		}
		if in-back < c.Funnel.MinTransfers || in == 0 || float64(back) > c.Funnel.MaxReverse*float64(in) {
			continue
		}
		llr := funnelLLR(in, back, c.Funnel.Back)
		if llr < c.Funnel.LLR {
			continue
		}
		for _, f := range d.into[to] {
			if f.n >= c.Funnel.MinEach {
				add(DetFunnel, llr, &f.ev, f.k.a, to)
			}
		}
	}
	d.dirtyEdges = d.dirtyEdges[:0]
	slices.SortFunc(out, func(x, y Flag) int {
		return cmp.Or(cmp.Compare(x.Detector, y.Detector), slices.Compare(x.Players, y.Players))
	})
	return out
}

// binomialZ is the z-score of k successes in n trials (n > 0) against a
// chance p in (0, 1) each: how far above an honest rate a count is, with
// the sample size in it.
func binomialZ(k, n int, p float64) float64 {
	return (float64(k) - float64(n)*p) / math.Sqrt(float64(n)*p*(1-p))
}

// tradeLLR is the log-likelihood ratio of pr's match history (at least
// one match) under the more likely cheating model against fair coin
// flips (trading, each winner after the first alternating with chance q,
// or feeding, one side winning each match with chance q), plus, when that
// is positive, the ratio of the two accounts' opponents under a cheating
// pair's share of their matches against friends'.
func tradeLLR(pr *pair, w *WinTrade) float64 {
	yes, no := math.Log(2*w.Q), math.Log(2*(1-w.Q))
	trade := float64(pr.alts)*yes + float64(pr.matches-1-pr.alts)*no
	k := max(pr.winsA, pr.matches-pr.winsA)
	feed := float64(k)*yes + float64(pr.matches-k)*no
	results := max(trade, feed)
	if results <= 0 {
		return results
	}
	with, other := math.Log(w.Share/w.HonestShare), math.Log((1-w.Share)/(1-w.HonestShare))
	m := float64(pr.matches)
	opponents := 2*m*with + float64(pr.a.matches+pr.b.matches-2*pr.matches)*other
	return results + opponents
}

// funnelLLR is the log-likelihood ratio of in transfers to an account
// and back transfers from it (to its feeders) under a funnel, each
// transfer going back with chance q in (0, 0.5), against friends, each
// either way with chance one half.
func funnelLLR(in, back int, q float64) float64 {
	return float64(in)*math.Log(2*(1-q)) + float64(back)*math.Log(2*q)
}
