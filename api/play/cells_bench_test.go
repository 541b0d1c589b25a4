package play

import (
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// The grid hub's cost per delivery (issue 11): 1,000 attached players on
// an 11×11 grid of cells (about 8 per cell, radius 1: about 75 in each
// player's neighbourhood), each tick 5 batches of one critical hit and 10
// bulk moves, one move in ten crossing into the next cell.

const (
	gridSide    = 11  // cells per side
	gridCell    = 100 // position units per cell
	gridPlayers = 1000
)

// gridHub is a grid hub without a store over gridPlayers attached players
// spread over the grid; the benchmark and the tests call fanout and tick
// themselves.
func gridHub(t testing.TB, codec playCodec, queue int) (*hub, []*playConn, fakeEntities) {
	t.Helper()
	pm, err := newPlayMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	s := bareServer(pm)
	s.cfg = DefaultConfig()
	ic := InterestConfig{Cell: gridCell, X: "x", Y: "y", Radius: 1}
	h := s.newHubWith("w", 0, ic)
	state := fakeEntities{}
	conns := make([]*playConn, gridPlayers)
	var ents []fsm.EntityView
	for i := range conns {
		id := fmt.Sprintf("p%d", i)
		x, y := gridHome(i)
		state[id] = map[string]fsm.Value{"x": fsm.Int(x), "y": fsm.Int(y)}
		v, _ := state.lookup(id)
		ents = append(ents, v)
		conns[i] = &playConn{s: s, world: "w", player: id, ob: newOutbox(queue, codec), detached: make(chan struct{}, 1)}
	}
	h.idx = newInterestIndex(ic, state.lookup)
	h.idx.seedAll(ents)
	for _, c := range conns {
		c.ob.start(0)
		ok, err := h.attach(c)
		require.NoError(t, err)
		require.True(t, ok)
		_, err = c.ob.take() // the whole enter
		require.NoError(t, err)
	}
	return h, conns, state
}

// gridHome is player i's place: the middle of cell i mod the grid's cells.
func gridHome(i int) (int64, int64) {
	k := i % (gridSide * gridSide)
	return int64(k%gridSide)*gridCell + gridCell/2, int64(k/gridSide)*gridCell + gridCell/2
}

// gridBatch is one batch from seq on: a critical hit on one player, then
// moves of players first.. (each by its own player); every tenth move
// crosses into the next cell along x, and the player's next move brings it
// home.
func gridBatch(seq uint64, first, moves int, away map[int]bool) []*fsm.Event {
	target := fmt.Sprintf("p%d", (first*7)%gridPlayers)
	evs := []*fsm.Event{{Seq: seq, Player: fmt.Sprintf("p%d", (first*13)%gridPlayers), Priority: fsm.PriorityCritical,
		Changes: []fsm.Change{{Entity: target, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-1), Version: seq}}}}
	for i := range moves {
		s := seq + 1 + uint64(i)
		p := (first + i) % gridPlayers
		x, y := gridHome(p)
		x += int64(s % 20) // within its cell
		switch {
		case away[p]:
			delete(away, p)
		case (first+i)%10 == 0:
			x += gridCell
			away[p] = true
		}
		id := fmt.Sprintf("p%d", p)
		evs = append(evs, &fsm.Event{Seq: s, Player: id, Priority: fsm.PriorityBulk,
			Changes: []fsm.Change{{Entity: id, Field: "x", Op: fsm.OpSet, Value: fsm.Int(x), Version: s},
				{Entity: id, Field: "y", Op: fsm.OpSet, Value: fsm.Int(y), Version: s}}})
	}
	for _, ev := range evs {
		ev.World, ev.Status = "w", fsm.StatusApplied
	}
	return evs
}

// BenchmarkHubGridFanoutTick: one op is one tick of the grid world: its 5
// batches fanned out, the tick, and every connection's writer taking its
// frames. ns/delivery divides the op's time by the events the players'
// interest assigns them in it (each player's share of each batch, as
// interestIndex.wants decides it).
func BenchmarkHubGridFanoutTick(b *testing.B) {
	for _, codec := range []playCodec{codecJSON, codecMsgpack} {
		name := "json"
		if codec == codecMsgpack {
			name = "msgpack"
		}
		b.Run(name, func(b *testing.B) {
			h, conns, _ := gridHub(b, codec, 256)
			seq, first := uint64(1), 0
			away := map[int]bool{}
			deliveries := 0
			taken := make([][][]byte, len(conns))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for range 5 {
					evs := gridBatch(seq, first, 10, away)
					hevs, err := h.s.prepare(evs, true)
					if err != nil {
						b.Fatal(err)
					}
					h.fanout(evs, hevs)
					b.StopTimer()
					for _, c := range conns {
						for _, he := range hevs {
							if h.idx.wants(c.player, he) {
								deliveries++
							}
						}
					}
					b.StartTimer()
					seq += uint64(len(evs))
					first += 10
				}
				h.tick()
				for i, c := range conns {
					// As the writer takes them (ws.go writeQueued).
					out, err := c.ob.takeAppend(taken[i])
					if err != nil {
						b.Fatal(err)
					}
					clear(out)
					taken[i] = out
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(deliveries), "ns/delivery")
			b.ReportMetric(float64(deliveries)/float64(b.N), "deliveries/op")
		})
	}
}
