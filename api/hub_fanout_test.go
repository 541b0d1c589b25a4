package api

import (
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// fanoutHub is a hub without a store: the tests and the benchmark call
// fanout and tick themselves, as run and ticker do.
func fanoutHub(t testing.TB, n int, codec playCodec, queue int) (*hub, []*playConn) {
	t.Helper()
	pm, err := newPlayMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	s := &Server{wire: new(wireCache), playMetrics: pm}
	s.cfg.Play = DefaultPlayConfig()
	h := s.newHub("w", 0)
	conns := make([]*playConn, n)
	for i := range conns {
		c := &playConn{s: s, world: "w", player: fmt.Sprintf("p%d", i), ob: newOutbox(queue, codec), detached: make(chan struct{}, 1)}
		h.members[c] = memberAttached
		conns[i] = c
	}
	return h, conns
}

// fanoutBatch is one batch from seq on: a critical hit, then bulk moves of
// players p<first>.. .
func fanoutBatch(seq uint64, first, moves int) []*fsm.Event {
	evs := []*fsm.Event{critEv(seq, "boss")}
	for i := range moves {
		s := seq + 1 + uint64(i)
		evs = append(evs, moveEv(s, fmt.Sprintf("p%d", (first+i)%1000), int64(s)))
	}
	for _, ev := range evs {
		ev.World, ev.Status = "w", fsm.StatusApplied
	}
	return evs
}

// BenchmarkHubFanoutTick: one op is one tick of a world with 1,000 attached
// play connections: 5 batches of one critical event and 10 bulk moves
// (1,100 events/s at the default 50 ms tick), the tick, and every
// connection's writer taking its frames.
func BenchmarkHubFanoutTick(b *testing.B) {
	for _, codec := range []playCodec{codecJSON, codecMsgpack} {
		name := "json"
		if codec == codecMsgpack {
			name = "msgpack"
		}
		b.Run(name, func(b *testing.B) {
			h, conns := fanoutHub(b, 1000, codec, 256)
			seq, first := uint64(1), 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for range 5 {
					evs := fanoutBatch(seq, first, 10)
					hevs, err := h.s.prepare(evs, true)
					if err != nil {
						b.Fatal(err)
					}
					h.fanout(evs, hevs)
					seq += uint64(len(evs))
					first += 10
				}
				h.tick()
				for _, c := range conns {
					if _, err := c.ob.take(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
