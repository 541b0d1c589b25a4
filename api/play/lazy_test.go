package play

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// signalled reports whether o's writer was woken, consuming the wake.
func signalled(o *outbox) bool {
	select {
	case <-o.signal:
		return true
	default:
		return false
	}
}

// The enter and leave messages that bulk moves make do not wake the
// writer: the tick's wake takes them with the delta, in one write; those
// of a critical move go at once, with its events frame.
func TestEnterAndLeaveOfBulkMovesWaitForTheTick(t *testing.T) {
	state := fakeEntities{
		"ann": {"x": fsm.Int(5), "y": fsm.Int(5)},
		"orc": {"x": fsm.Int(95), "y": fsm.Int(5)},
	}
	h, conns := cellsHub(t, state, 1, "ann")
	c := conns["ann"]
	signalled(c.ob)
	fan := func(evs ...*fsm.Event) {
		h.fanout(evs, hubEvents(t, evs...))
	}
	types := func() []string {
		var out []string
		for _, f := range frames(t, c.ob) {
			out = append(out, f["type"].(string))
		}
		return out
	}

	fan(moveEv(1, "orc", 15)) // into ann's area, by a bulk move
	require.False(t, signalled(c.ob), "a bulk move's enter waits")
	h.tick()
	require.True(t, signalled(c.ob), "the tick wakes the writer")
	require.Equal(t, []string{"enter", "delta"}, types(), "the enter and the tick's delta in one take")

	fan(moveEv(2, "orc", 95)) // out again, by a bulk move
	require.False(t, signalled(c.ob), "a bulk move's leave waits")
	require.Equal(t, []string{"leave"}, types(), "a wake for anything else takes it")
	h.tick()
	require.False(t, signalled(c.ob), "nothing is left for the tick")

	crit := &fsm.Event{Seq: 3, Player: "orc", Priority: fsm.PriorityCritical,
		Changes: []fsm.Change{{Entity: "orc", Field: "x", Op: fsm.OpSet, Value: fsm.Int(15), Version: 3}}}
	fan(crit) // into ann's area, by a critical move
	require.True(t, signalled(c.ob))
	c.ob.mu.Lock()
	lazy := c.ob.lazy
	c.ob.mu.Unlock()
	require.False(t, lazy, "its enter asks for a wake of its own (the writer may have taken the events frame already)")
	require.Equal(t, []string{"events", "enter"}, types(), "a critical move's enter goes at once")
}
