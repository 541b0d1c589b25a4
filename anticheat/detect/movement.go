package detect

import (
	"math"

	"github.com/gsd-dev/gsd/fsm"
)

// move counts a move of p to the event's position.
func (d *Detector) move(p *player, at int64, s seen, ref Ref) {
	if !s.hasX {
		s.x = p.x
	}
	if !s.hasY {
		s.y = p.y
	}
	if !p.moved || p.world != ref.World {
		// A first move, or the first in another world: where the player
		// was is not known, so this move only sets the start.
		p.moved, p.world, p.x, p.y, p.at = true, ref.World, s.x, s.y, at
		p.winX, p.winY, p.winPath, p.winN = 0, 0, 0, 0
		return
	}
	dx, dy := s.x-p.x, s.y-p.y
	el := min(max(at-p.at, 0), int64(maxElapsed))
	p.x, p.y, p.at = s.x, s.y, at
	dist := math.Hypot(float64(dx), float64(dy))
	p.moves++
	d.touch(p)
	l := &d.cfg.Limits
	limit := float64(l.Slack) + float64(l.PerSecond)*float64(el)/1e9
	if limit > 0 && dist >= d.cfg.Speed.NearMax*limit {
		p.near++
		p.speedEv.add(ref)
	}
	// A jump is a move of Near × MaxStep or more after a pause long
	// enough for one (the limit allows it): a longer move sooner is over
	// the limit, which the hard check rejects, not a jump.
	if jump := d.cfg.Jump.Near * float64(l.MaxStep); l.MaxStep > 0 && limit >= jump && dist >= jump {
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

// place moves entity's player (when it moved before, in this world) to
// a position the server or another player gave it, without counting a
// move: a respawn is no jump.
func (d *Detector) place(world, entity string, f *Fields, c *fsm.Change) {
	p := d.players[entity]
	if p == nil || !p.moved || p.world != world {
		return
	}
	if c.Field == f.X {
		p.x = c.Value.Int
	} else {
		p.y = c.Value.Int
	}
}

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

type stepKey struct{ dx, dy int64 }

// steps are one world's moves of its current tick, grouped by delta.
type steps struct {
	tick   int64
	groups map[stepKey][]*player
	refs   map[*player]Ref
}
