package streams

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// follow writes each seq once, in order, whatever the chunks it is handed:
// it skips what it wrote already, writes a chunk from its position on, and
// reads what lies before a chunk from its own subscription.
func TestEventStreamFollowWritesEachSeqOnce(t *testing.T) {
	t.Parallel()
	node := apitest.StartStore(t)
	ctx := context.Background()
	require.NoError(t, node.CreateWorld(ctx, "arena", fsm.Rules{}))
	for i := uint64(1); i <= 5; i++ {
		ev, _, err := node.Act(ctx, &fsm.Action{World: "arena", Player: "p1", Seq: i,
			Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "score", By: 1}}})
		require.NoError(t, err)
		require.Equal(t, i, ev.Seq)
	}
	s := &Service{Core: apitest.Core(t, node, nil)}
	chunk := func(from, to uint64) *fanout.Chunk {
		var evs []*fsm.Event
		for s := from; s <= to; s++ {
			ev, ok := node.Event("arena", s)
			require.True(t, ok)
			evs = append(evs, ev)
		}
		c, err := fanout.NewChunk(s.Wire().NDJSON, from, evs)
		require.NoError(t, err)
		return c
	}
	sub, err := node.Subscribe("arena", 2)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	st := &eventStream{s: s, out: httpOut{w: rec, rc: http.NewResponseController(rec)}, world: "arena", next: 2}
	ch := make(chan *fanout.Chunk, 3)
	ch <- chunk(1, 3) // from seq 2 on
	ch <- chunk(2, 3) // written already
	ch <- chunk(5, 5) // 4 comes from the subscription (with 5)
	close(ch)
	require.True(t, st.follow(context.Background(), ch, &sub))
	var got []uint64
	sc := bufio.NewScanner(strings.NewReader(rec.Body.String()))
	for sc.Scan() {
		var ev struct{ Seq uint64 }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
		got = append(got, ev.Seq)
	}
	require.Equal(t, []uint64{2, 3, 4, 5}, got)
	require.EqualValues(t, 6, st.next)
}

// The fan's chunks (fanout with the ndjson encoder) carry the same bytes as
// a stream writing the events from its own subscription, from any event on.
func TestEventFanChunksHoldTheStreamsLines(t *testing.T) {
	t.Parallel()
	evs := apitest.GoldenFrameEvents()
	w := new(edge.WireCache)
	c, err := fanout.NewChunk(w.NDJSON, evs[0].Seq, evs)
	require.NoError(t, err)
	require.Equal(t, evs[len(evs)-1].Seq+1, c.End())
	for i := range evs {
		var want []byte
		for _, ev := range evs[i:] {
			line, err := w.Line(ev)
			require.NoError(t, err)
			want = append(want, line...)
		}
		require.Equal(t, string(want), string(c.From(evs[i].Seq)), "from seq %d", evs[i].Seq)
	}
}
