package spectator

import (
	"fmt"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// The benchmarks measure the spectator path's CPU per committed event
// against the budget in docs/ARCHITECTURE.md (fan-out ≤ 5 µs per
// delivered frame). Run them by hand: go test -run X -bench . ./spectator

// benchEvents makes n events of players moving (x, y) and, one in ten,
// changing a hidden field; entities are spread over the players.
func benchEvents(players, n int) []*fsm.Event {
	evs := make([]*fsm.Event, n)
	for i := range evs {
		p := fmt.Sprintf("p%d", i%players)
		c := []fsm.Change{
			{Entity: p, Field: "x", Op: fsm.OpSet, Value: fsm.Float(float64(i)), Version: uint64(i + 1)},
			{Entity: p, Field: "y", Op: fsm.OpSet, Value: fsm.Float(float64(-i)), Version: uint64(i + 1)},
		}
		if i%10 == 0 {
			c = append(c, fsm.Change{Entity: p, Field: "hand", Op: fsm.OpSet, Value: fsm.String("ace"), Version: uint64(i + 1)})
		}
		evs[i] = &fsm.Event{World: "w", Seq: uint64(i + 1), Time: int64(i), Player: p, Status: fsm.StatusApplied, Changes: c}
	}
	return evs
}

func benchAccess(b *testing.B) *Access {
	r := fsm.Rules{Fields: map[string]fsm.FieldRule{
		"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}, "y": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative},
		"hand": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative}, "side": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	}, Schema: fsm.Schema{
		Access: map[string]fsm.FieldAccess{"hand": {Visible: "owner"}},
		Teams:  fsm.TeamRule{From: "field", Key: "side"},
	}}
	a, err := NewAccess(r)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// BenchmarkFilterEvent: one event prepared, then filtered for four views.
func BenchmarkFilterEvent(b *testing.B) {
	a := benchAccess(b)
	evs := benchEvents(1000, b.N)
	f := NewFilter(a, NewState("w"), nil)
	views := []View{{}, {player: "p1"}, {player: "p2"}, {sees: 1 << VisibleOwner}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p, err := f.Prepare(evs[i])
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range views {
			f.Event(p, v)
		}
	}
}

// BenchmarkPipelineStep: a tick of 1,000 events from 1,000 players, made
// into deltas for 8 views, each with a viewer; ns/op is per event.
func BenchmarkPipelineStep(b *testing.B) {
	a := benchAccess(b)
	const perTick = 1000
	evs := benchEvents(1000, b.N+perTick)
	now := time.Unix(1_700_000_000, 0)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe, cfg.Now = "w", a, newFeed().subscribe, func() time.Time { return now }
	cfg.Queue = 8 // drained every tick
	p, err := newPipeline(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 8 {
		if _, err := p.Join(View{player: fmt.Sprintf("p%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += perTick {
		p.delay.Push(evs[i:min(i+perTick, b.N)]...)
		if err := p.step(now); err != nil {
			b.Fatal(err)
		}
		for _, vs := range p.views { // the viewers read
			for m := range vs.members {
				for len(m.ch) > 0 {
					<-m.ch
				}
			}
		}
	}
}

// BenchmarkLiveDelta: one view's delta frame of a tick of 100 events from
// 100 players, as the live pipeline makes it (the bytes every viewer of
// the view is sent); ns/op and allocs/op are per delta.
func BenchmarkLiveDelta(b *testing.B) {
	a := benchAccess(b)
	cfg := DefaultConfig()
	cfg.World, cfg.Access, cfg.Subscribe = "w", a, newFeed().subscribe
	p, err := newPipeline(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, ev := range benchEvents(100, 100) {
		if err := p.ticker.Apply(ev); err != nil {
			b.Fatal(err)
		}
	}
	key := viewKey{view: View{player: "p1"}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f, err := p.tickFrameLocked(key)
		if err != nil || f == nil {
			b.Fatal(f, err)
		}
	}
}
