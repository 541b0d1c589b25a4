package spectator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestPropertyViewsEqualTheAggregateRecomputedFromTheEventsTheViewerSaw
// plays random games under random visibility rules, views and a random
// delay, and at random points asks the pipeline for each viewer's views
// (Pipeline.Views, what GET .../views serves): their seq is one the delay
// has released, and each view equals the aggregate a reference recomputes
// from scratch by folding the events up to that seq, written apart from
// Aggregates. A view is served to a viewer exactly when the viewer's class
// sees its field on every entity (visible to all, or a visibility its
// class sees); a viewer that sees it on its own team's or its own
// entities only gets that one group of an aggregate by team or by player
// (filtering by team); an aggregate of a field it may not see is never
// served otherwise.
func TestPropertyViewsEqualTheAggregateRecomputedFromTheEventsTheViewerSaw(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pw := newPropWorld(t)
		viewers := pw.viewers(t)
		by := func(name string) string { return rapid.SampledFrom([]string{"", "team", "player"}).Draw(t, "by "+name) }
		views := map[string]fsm.ViewRule{
			"sum":   {Kind: "sum", Field: "C0", By: by("sum")},
			"count": {Kind: "count", Field: "F0", By: by("count")},
			"max":   {Kind: "max", Field: "C0", By: by("max")},
			"min":   {Kind: "min", Field: "F1", By: by("min")},
			"feed":  {Kind: "feed", Field: "F2"},
		}
		ag, err := NewAggregates(pw.a, fsm.Rules{Schema: fsm.Schema{Views: views}})
		require.NoError(t, err)
		delay := time.Duration(rapid.IntRange(0, 4).Draw(t, "delay")) * time.Second
		skew := time.Duration(rapid.IntRange(0, 2).Draw(t, "skew")) * 500 * time.Millisecond
		now := time.Unix(0, t0)
		cfg := DefaultConfig()
		cfg.World, cfg.Access, cfg.Subscribe, cfg.Aggregates = "w", pw.a, newFeed().subscribe, ag
		cfg.Now, cfg.Delay, cfg.MaxClockSkew = func() time.Time { return now }, delay, skew
		p, err := newPipeline(cfg)
		require.NoError(t, err)

		check := func() {
			for _, v := range viewers {
				seq, got, err := p.Views(v.view)
				require.NoError(t, err)
				require.LessOrEqual(t, seq, uint64(len(pw.g.events)))
				if seq > 0 {
					require.LessOrEqual(t, pw.g.events[seq-1].Time, now.Add(-delay).UnixNano(), "a view reflects an event the delay holds")
				}
				want := refViews(pw, views, v, pw.g.events[:seq])
				require.Equal(t, len(want), len(got), "views of %+v: %v", v.Viewer, got)
				for _, f := range got {
					w, ok := want[f.Name]
					require.True(t, ok, "view %s reached %+v, which may not see %s", f.Name, v.Viewer, views[f.Name].Field)
					require.Equal(t, seq, f.Seq)
					require.Equal(t, "w", f.World)
					require.Equal(t, views[f.Name].Kind, f.Kind)
					require.Equal(t, len(w.Groups), len(f.Groups), "view %s at seq %d: %v, want %v", f.Name, seq, f.Groups, w.Groups)
					for g, val := range w.Groups {
						require.Equal(t, val, f.Groups[g], "view %s group %q at seq %d", f.Name, g, seq)
					}
					require.Equal(t, w.Feed, f.Feed, "feed at seq %d", seq)
				}
			}
		}
		for range rapid.IntRange(1, 40).Draw(t, "events") {
			ev := pw.step(t)
			p.delay.Push(ev)
			now = time.Unix(0, ev.Time)
			if rapid.IntRange(0, 2).Draw(t, "tick") == 0 {
				require.NoError(t, p.step(now))
				check()
			}
		}
		now = now.Add(delay + skew)
		require.NoError(t, p.step(now))
		check()
		seq, _, err := p.Views(View{})
		require.NoError(t, err)
		require.Equal(t, uint64(len(pw.g.events)), seq, "after the delay, every event is in the views")
	})
}

// refViews recomputes, from scratch over evs, the views v may see.
func refViews(pw *propWorld, views map[string]fsm.ViewRule, v propViewer, evs []*fsm.Event) map[string]wire.ViewFrame {
	// Fold the events: each entity's scalar fields as the last change left
	// them, its side and owner for the groups.
	ents := map[string]map[string]fsm.Value{}
	var feed []wire.FeedItem
	for _, ev := range evs {
		if ev.Status != fsm.StatusApplied {
			continue
		}
		for _, c := range ev.Changes {
			switch {
			case c.Field == "":
				delete(ents, c.Entity)
				continue
			case c.Field == "S0":
				continue // a set: no view reads it
			}
			if ents[c.Entity] == nil {
				ents[c.Entity] = map[string]fsm.Value{}
			}
			ents[c.Entity][c.Field] = c.Value
			if c.Field == "F2" {
				feed = append(feed, wire.FeedItem{Seq: ev.Seq, Player: ev.Player, Entity: c.Entity, Value: c.Value})
			}
		}
	}
	sides := refFields{}
	for id, fs := range ents {
		sides[id] = map[string]string{}
		for _, f := range []string{"side", "owner"} {
			if val, ok := fs[f]; ok {
				sides[id][f] = val.Str
			}
		}
	}
	out := map[string]wire.ViewFrame{}
	for name, rule := range views {
		// Whole when the viewer sees the field on every entity; else, by
		// team over a team field, or by player over an owner or team
		// field, the viewer's own group only; else not at all.
		only, cut := "", false
		if vis := pw.vis[rule.Field]; vis != "" && !slices.Contains(v.sees, vis) {
			team := v.Team
			if v.Player != "" {
				team = sides.who(v.Player).team
			}
			switch {
			case rule.By == "team" && vis == "team" && team != "":
				only, cut = team, true
			case rule.By == "player" && (vis == "owner" || vis == "team") && v.Player != "":
				only, cut = v.Player, true
			default:
				continue
			}
		}
		f := wire.ViewFrame{Groups: map[string]wire.Value{}}
		if rule.Kind == "feed" {
			f.Feed = feed[max(0, len(feed)-FeedLen):]
			if len(f.Feed) == 0 {
				f.Feed = nil
			}
			out[name] = f
			continue
		}
		members := map[string][]fsm.Value{}
		for id, fs := range ents {
			val, ok := fs[rule.Field]
			if !ok {
				continue
			}
			grp := ""
			switch w := sides.who(id); rule.By {
			case "team":
				grp = w.team
			case "player":
				grp = w.owner
			}
			if !cut || grp == only {
				members[grp] = append(members[grp], val)
			}
		}
		for grp, vals := range members {
			switch rule.Kind {
			case "count":
				f.Groups[grp] = fsm.Int(int64(len(vals)))
			case "sum":
				var s int64
				for _, x := range vals {
					s += x.Int
				}
				f.Groups[grp] = fsm.Int(s)
			case "max", "min":
				best := vals[0]
				for _, x := range vals[1:] {
					if better(rule.Kind, x, best) {
						best = x
					}
				}
				f.Groups[grp] = best
			default:
				panic(fmt.Sprintf("kind %s", rule.Kind))
			}
		}
		out[name] = f
	}
	return out
}

// better reports whether x beats best for a max or min of ints or strings.
func better(kind string, x, best fsm.Value) bool {
	if x.Kind == fsm.KindInt {
		return kind == "max" && x.Int > best.Int || kind == "min" && x.Int < best.Int
	}
	return kind == "max" && x.Str > best.Str || kind == "min" && x.Str < best.Str
}
