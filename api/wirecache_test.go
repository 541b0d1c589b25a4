package api

import (
	"encoding/json"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestWireCacheEncodesAnEventOnceAndTellsEventsApart(t *testing.T) {
	c := new(edge.WireCache)
	ev := &fsm.Event{World: "w", Seq: 7, Status: fsm.StatusApplied, Player: "p1", ClientSeq: 1}
	a, err := c.Line(ev)
	require.NoError(t, err)
	b, err := c.Line(ev)
	require.NoError(t, err)
	require.Same(t, &a[0], &b[0], "the second stream reuses the first encoding")
	var got wire.Event
	require.NoError(t, json.Unmarshal(a, &got))
	require.Equal(t, uint64(7), got.Seq)
	require.Equal(t, byte('\n'), a[len(a)-1])

	// Another event in the same slot (an archive read, a restore) is
	// encoded afresh, never answered with the cached line.
	other := &fsm.Event{World: "w", Seq: 7, Status: fsm.StatusRejected, Reason: "validator"}
	o, err := c.Line(other)
	require.NoError(t, err)
	require.Contains(t, string(o), `"rejected"`)
}
