package plan

import (
	"fmt"
	"maps"
	"slices"
)

// Move is one step of a plan: World goes from shard From to shard To.
// FromAfter and ToAfter are the two shards' loads as the plan expects
// them after the step.
type Move struct {
	World     string
	From, To  uint64
	FromAfter Load
	ToAfter   Load
}

// board is a plan's working copy of the map: each shard's load, the
// worlds it lists (by name), and each world's estimated share of its
// shard's players and events.
type board struct {
	loads map[uint64]Load
	on    map[uint64][]string // sorted
	share map[string]Load     // Players and Events only
}

// newBoard checks shards (distinct ids) and takes the worlds the map
// lists on them; worlds on shards not among shards are left out. A
// shard's Worlds is counted from worlds, not taken from shards. A
// world's share is its shard's players and events split evenly over its
// listed worlds (the first worlds by name take the remainder), because
// leaders report load per shard, not per world; a shard without listed
// worlds keeps its load where it is.
func newBoard(shards []Load, worlds map[string]uint64) (*board, error) {
	b := &board{loads: make(map[uint64]Load, len(shards)), on: map[uint64][]string{}, share: map[string]Load{}}
	for _, s := range shards {
		if _, dup := b.loads[s.ID]; dup {
			return nil, fmt.Errorf("%w: shard %d listed twice", ErrPlan, s.ID)
		}
		s.Worlds = 0
		b.loads[s.ID] = s
	}
	for _, w := range slices.Sorted(maps.Keys(worlds)) {
		g := worlds[w]
		if l, ok := b.loads[g]; ok {
			b.on[g] = append(b.on[g], w)
			l.Worlds++
			b.loads[g] = l
		}
	}
	for g, names := range b.on {
		l, n := b.loads[g], uint64(len(names))
		for i, w := range names {
			sh := Load{Players: l.Players / n, Events: l.Events / n}
			if uint64(i) < l.Players%n {
				sh.Players++
			}
			if uint64(i) < l.Events%n {
				sh.Events++
			}
			b.share[w] = sh
		}
	}
	return b, nil
}

// after returns the loads of from and to if w moved between them.
func (b *board) after(w string, from, to uint64) (Load, Load) {
	src, dst, sh := b.loads[from], b.loads[to], b.share[w]
	src.Worlds--
	src.Players -= sh.Players
	src.Events -= sh.Events
	dst.Worlds++
	dst.Players += sh.Players
	dst.Events += sh.Events
	return src, dst
}

// move moves w and returns the step.
func (b *board) move(w string, from, to uint64) Move {
	src, dst := b.after(w, from, to)
	b.loads[from], b.loads[to] = src, dst
	b.on[from] = slices.DeleteFunc(b.on[from], func(x string) bool { return x == w })
	i, _ := slices.BinarySearch(b.on[to], w)
	b.on[to] = slices.Insert(b.on[to], i, w)
	return Move{World: w, From: from, To: to, FromAfter: src, ToAfter: dst}
}

// sorted returns the loads by headroom, the most first.
func (b *board) sorted(skip uint64, skipping bool) []Load {
	out := make([]Load, 0, len(b.loads))
	for _, l := range b.loads {
		if !skipping || l.ID != skip {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, byHeadroom)
	return out
}

// Rebalance plans up to maxMoves world moves (0: no limit) from the
// most loaded shards to those with the most headroom, by the order
// Place uses (Compare). Each step moves one listed world, chosen as the
// first in this order: the source from the most loaded down, the target
// from the most headroom up, the source's worlds by name; and only when
// the target would have at least as much headroom as the source after
// the step, so a step never makes a shard busier than the one it
// relieved. Worlds count first in Compare, so a step needs the source
// to list at least two worlds more than the target, and the plan ends
// (the sum of squared world counts falls by at least 2 each step). It is
// pure and deterministic: the same shards and worlds give the same plan,
// whatever the order of shards.
func Rebalance(shards []Load, worlds map[string]uint64, maxMoves int) ([]Move, error) {
	if maxMoves < 0 {
		return nil, fmt.Errorf("%w: max moves %d: want 0 (no limit) or more", ErrPlan, maxMoves)
	}
	b, err := newBoard(shards, worlds)
	if err != nil {
		return nil, err
	}
	var plan []Move
	for maxMoves == 0 || len(plan) < maxMoves {
		m, ok := b.step()
		if !ok {
			break
		}
		plan = append(plan, m)
	}
	return plan, nil
}

// step makes Rebalance's next move, if there is one.
func (b *board) step() (Move, bool) {
	ls := b.sorted(0, false)
	for i := len(ls) - 1; i > 0; i-- {
		src := ls[i]
		for _, dst := range ls[:i] {
			for _, w := range b.on[src.ID] {
				if from, to := b.after(w, src.ID, dst.ID); Compare(to, from) <= 0 {
					return b.move(w, src.ID, dst.ID), true
				}
			}
		}
	}
	return Move{}, false
}

// Drain plans moving every world the map lists on shard id to the other
// shards, each in name order to where Place would put a new world given
// the moves before it. It refuses an unknown shard and the last shard.
func Drain(shards []Load, worlds map[string]uint64, id uint64) ([]Move, error) {
	b, err := newBoard(shards, worlds)
	if err != nil {
		return nil, err
	}
	if _, ok := b.loads[id]; !ok {
		return nil, fmt.Errorf("%w: no shard %d", ErrPlan, id)
	}
	if len(b.loads) == 1 {
		return nil, fmt.Errorf("%w: shard %d is the last shard: its worlds have nowhere to go", ErrPlan, id)
	}
	var plan []Move
	for _, w := range slices.Clone(b.on[id]) {
		to, _ := Place(b.sorted(id, true))
		plan = append(plan, b.move(w, id, to))
	}
	return plan, nil
}
