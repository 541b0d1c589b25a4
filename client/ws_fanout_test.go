package client

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// TestPlayResumesWithInterestAndCoalescingWithoutGapsInCriticalEvents:
// with interest and bulk coalescing on, a player whose connection drops
// again and again gets every critical event of its area exactly once and
// in order, none from afar, and ends with the same state as the server.
func TestPlayResumesWithInterestAndCoalescingWithoutGapsInCriticalEvents(t *testing.T) {
	forEachEncoding(t, testPlayResumesWithInterestAndCoalescingWithoutGapsInCriticalEvents)
}

func testPlayResumesWithInterestAndCoalescingWithoutGapsInCriticalEvents(t *testing.T, enc string) {
	n := startPlayNode(t, func(c *api.Config) {
		c.Play.TickInterval = 5 * time.Millisecond
		c.Play.Interest = api.InterestConfig{Cell: 100, X: "x", Y: "y", Radius: 1}
	})
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	defer c.Close()
	ctx := playCtx(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	gm := uint64(0)
	place := func(entity string, x, y int64) {
		gm++
		_, err := c.Act(ctx, "arena", ActionRequest{Player: "gm", Seq: gm, Ops: []wire.Op{Set(entity, "x", wire.Int(x)), Set(entity, "y", wire.Int(y))}})
		require.NoError(t, err)
	}
	place("ann", 50, 50)
	place("near", 150, 150)
	place("far", 950, 950)
	p, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann", AckInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()

	// bob hits near and far things (critical) and moves near (bulk),
	// while ann's connection keeps dropping.
	const rounds = 150
	type sent struct{ near, far []uint64 }
	done := make(chan sent, 1)
	go func() {
		var s sent
		defer func() { done <- s }()
		seq := uint64(0)
		for i := range rounds {
			seq++
			ev, err := c.Act(ctx, "arena", ActionRequest{Player: "bob", Seq: seq, Ops: []wire.Op{Incr("near", "hp", -1)}})
			if err != nil {
				return
			}
			s.near = append(s.near, ev.Seq)
			seq++
			if ev, err = c.Act(ctx, "arena", ActionRequest{Player: "bob", Seq: seq, Ops: []wire.Op{Incr("far", "hp", -1)}}); err != nil {
				return
			}
			s.far = append(s.far, ev.Seq)
			seq++
			if _, err = c.Act(ctx, "arena", ActionRequest{Player: "bob", Seq: seq, Priority: PriorityBulk,
				Ops: []wire.Op{Set("near", "x", wire.Int(int64(100+i%50))), Set("near", "y", wire.Int(int64(150)))}}); err != nil {
				return
			}
		}
	}()

	var crit []uint64
	state := map[string]map[string]wire.Change{}
	apply := func(ev wire.Event) {
		for _, ch := range ev.Changes {
			if state[ch.Entity] == nil {
				state[ch.Entity] = map[string]wire.Change{}
			}
			if old, ok := state[ch.Entity][ch.Field]; !ok || ch.Version > old.Version {
				state[ch.Entity][ch.Field] = ch
			}
		}
	}
	var s sent
	writerDone := false
	deltas := 0
	for received := 0; ; received++ {
		if !writerDone {
			select {
			case s = <-done:
				writerDone = true
				require.Len(t, s.near, rounds, "the writer finished")
			default:
			}
		}
		if writerDone && len(crit) == len(s.near) {
			want, err := c.Entity(ctx, "arena", "near", Linearizable)
			require.NoError(t, err)
			if x := state["near"]["x"]; x.Value != nil && x.Version == want.Versions["x"] {
				wx, _ := want.Int("x")
				require.Equal(t, wire.Int(wx), *x.Value, "the final state is the server's")
				require.Equal(t, want.Versions["hp"], state["near"]["hp"].Version)
				break
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		ev, err := p.Next(rctx)
		cancel()
		if err == context.DeadlineExceeded {
			continue
		}
		require.NoError(t, err)
		if ev.Status == DeltaStatus {
			deltas++
		} else if ev.Priority == "critical" {
			crit = append(crit, ev.Seq)
		}
		apply(ev)
		if received%40 == 39 {
			p.Drop()
		}
	}
	require.Equal(t, s.near, crit, "every near critical event once, in order; none from afar")
	require.NotZero(t, deltas)
	_, resumes := p.Session()
	require.GreaterOrEqual(t, resumes, 1)
}
