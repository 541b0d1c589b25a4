package detect

import (
	"math"
	"slices"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"pgregory.net/rapid"
)

// Any stream of events, however odd (times going back, strings where ints
// belong, a player acting in several worlds, fields the detectors read on
// any entity, tiny thresholds), is counted without a panic, and every flag
// is well formed: a known detector, one or two sorted players, a finite
// score, at most eight refs to events that were observed.
func TestAnyEventStreamGivesWellFormedFlags(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := DefaultConfig()
		c.Speed.MinMoves, c.Jump.MinMoves, c.Straight.MinWindows = 1, 1, 1
		c.Straight.Window = rapid.IntRange(2, 4).Draw(t, "window")
		c.Reaction.MinSamples, c.Accuracy.MinShots, c.Accuracy.MinPlayers = 1, 1, 1
		c.Economy.MinSamples, c.Economy.Share = 1, 0
		c.Lockstep.MinTogether, c.WinTrade.MinMatches, c.Funnel.MinTransfers = 1, 1, 1
		c.Speed.Share, c.Jump.Z, c.Straight.Share, c.Reaction.Z = 0, -1e6, 0, -1e6
		c.Accuracy.Z, c.WinTrade.LLR, c.Lockstep.Share = -1e6, -1e6, 0
		c.Switch.MinReactions, c.Switch.MinShots, c.Switch.Z, c.Funnel.LLR = 1, 1, -1e6, -1e6
		d, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"a", "b", "c", "npc"}
		fields := []string{"x", "y", "shot_at", "hp", "spawned", "items", "wins", "losses", "gold", "other", ""}
		ops := []fsm.OpKind{fsm.OpSet, fsm.OpIncr, fsm.OpAdd, fsm.OpRemove, fsm.OpDelete}
		seen := map[Ref]bool{}
		n := rapid.IntRange(0, 200).Draw(t, "events")
		for i := range n {
			ev := &fsm.Event{
				World:  rapid.SampledFrom([]string{"w1", "w2"}).Draw(t, "world"),
				Seq:    uint64(i + 1),
				Time:   rapid.Int64Range(-1e9, 30e9).Draw(t, "time"),
				Player: rapid.SampledFrom(names).Draw(t, "player"),
				Status: rapid.SampledFrom([]fsm.Status{fsm.StatusApplied, fsm.StatusApplied, fsm.StatusRejected}).Draw(t, "status"),
			}
			for range rapid.IntRange(0, 4).Draw(t, "changes") {
				v := fsm.Int(rapid.Int64Range(-1000, 1000).Draw(t, "int"))
				if rapid.Bool().Draw(t, "string") {
					v = fsm.String(rapid.SampledFrom([]string{"i1", "i2"}).Draw(t, "str"))
				}
				ev.Changes = append(ev.Changes, fsm.Change{
					Entity: rapid.SampledFrom(names).Draw(t, "entity"),
					Field:  rapid.SampledFrom(fields).Draw(t, "field"),
					Op:     rapid.SampledFrom(ops).Draw(t, "op"),
					Value:  v,
				})
			}
			d.Observe(ev)
			seen[Ref{ev.World, ev.Seq}] = true
			if rapid.IntRange(0, 20).Draw(t, "evaluate") == 0 {
				check(t, d.Evaluate(), seen)
			}
		}
		check(t, d.Evaluate(), seen)
	})
}

func check(t *rapid.T, flags []Flag, seen map[Ref]bool) {
	for _, f := range flags {
		if !slices.Contains(Detectors, f.Detector) {
			t.Fatalf("unknown detector %q", f.Detector)
		}
		if len(f.Players) < 1 || len(f.Players) > 2 || !slices.IsSorted(f.Players) {
			t.Fatalf("%s: players %q", f.Detector, f.Players)
		}
		if math.IsNaN(f.Score) || math.IsInf(f.Score, 0) {
			t.Fatalf("%s: score %v", f.Detector, f.Score)
		}
		if len(f.Evidence) > evidenceLen {
			t.Fatalf("%s: %d refs", f.Detector, len(f.Evidence))
		}
		for _, r := range f.Evidence {
			if !seen[r] {
				t.Fatalf("%s: evidence %v was never observed", f.Detector, r)
			}
		}
	}
}
