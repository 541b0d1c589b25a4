package fsm

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// An entry's single-op events share a slab per world; each is its own and
// none changes when later entries apply: the feed and the archive keep
// them after Apply returns.
func TestEventsOfAnEntryStayUnchangedByLaterEntries(t *testing.T) {
	h := newHarness(t)
	h.createWorld("arena", rules(false, nil))
	players := []string{"ann", "bob", "cy"}
	res := h.apply(
		cmdAction(act("arena", "ann", 1, opIncr("e1", "hp", 1))),
		cmdAction(act("arena", "bob", 1, opIncr("e1", "hp", 2), opSet("e2", "name", String("x")))),
		cmdAction(act("arena", "cy", 1, opSet("e2", "name", String("y")))),
		cmdAction(act("arena", "ann", 1, opIncr("e1", "hp", 1))), // a duplicate
	)
	kept := make([]Event, len(res))
	for i, r := range res {
		require.NoError(t, r.Err)
		kept[i] = *r.Event
		kept[i].Changes = append([]Change(nil), r.Event.Changes...)
	}
	require.True(t, res[3].Duplicate)
	for i := range res[:3] {
		require.Equal(t, players[i], res[i].Event.Player)
		require.Equal(t, StatusApplied, res[i].Event.Status)
		for j := range res[:i] {
			require.NotSame(t, res[i].Event, res[j].Event)
		}
	}
	for seq := uint64(2); seq < 6; seq++ {
		h.apply(
			cmdAction(act("arena", "ann", seq, opIncr("e1", "hp", 5))),
			cmdAction(act("arena", "bob", seq, opSet("e2", "name", String(fmt.Sprint(seq))))),
		)
	}
	for i, r := range res {
		require.Equal(t, kept[i], *r.Event)
	}
}

// An entry's events share a slab only with the same world's (slab.go):
// the feed keeps each world's newest events, and an idle world's must not
// keep a busy world's alive. Past maxSlabs worlds an entry's events are
// allocated one by one, and apply all the same.
func TestEventsShareASlabOnlyWithTheirWorlds(t *testing.T) {
	h := newHarness(t)
	worlds := make([]string, maxSlabs+2)
	for i := range worlds {
		worlds[i] = fmt.Sprint("w", i)
		h.createWorld(worlds[i], rules(false, nil))
	}
	var cmds []Command
	for round := range 2 {
		for _, w := range worlds {
			cmds = append(cmds, cmdAction(act(w, "ann", uint64(round+1), opIncr("e", "hp", 1))))
		}
	}
	res := h.apply(cmds...)
	addr := func(i int) uintptr { return uintptr(unsafe.Pointer(res[i].Event)) }
	size := unsafe.Sizeof(eventWithChange{})
	n := len(worlds)
	for i, w := range worlds {
		first, second := res[i].Event, res[n+i].Event
		require.Equal(t, w, first.World)
		require.Equal(t, []uint64{1, 2}, []uint64{first.Seq, second.Seq})
		require.Equal(t, Int(2), second.Changes[0].Value)
		if i >= maxSlabs {
			continue
		}
		require.Equal(t, addr(i)+size, addr(n+i), "a world's events of one entry are neighbours in its slab")
		for j := range worlds[:i] {
			for _, other := range []uintptr{addr(j), addr(n + j)} {
				require.False(t, other >= addr(i) && other < addr(i)+2*size, "world %s's slab holds another world's event", w)
			}
		}
	}
	require.Empty(t, h.f.slabs, "the FSM keeps no event after Apply")
}

// A world with more single-op actions in an entry than a slab holds gets
// several slabs, and every action its own event.
func TestEventsOfABigEntryFillSeveralSlabs(t *testing.T) {
	h := newHarness(t)
	h.createWorld("arena", rules(false, nil))
	n := 2*maxSlabEvents + 3
	cmds := make([]Command, n)
	for i := range cmds {
		cmds[i] = cmdAction(act("arena", fmt.Sprint("p", i), 1, opIncr("e", "hp", 1)))
	}
	res := h.apply(cmds...)
	size := unsafe.Sizeof(eventWithChange{})
	for i, r := range res {
		require.Equal(t, uint64(i+1), r.Event.Seq)
		require.Equal(t, Int(int64(i+1)), r.Event.Changes[0].Value)
		if i%maxSlabEvents != 0 {
			require.Equal(t, uintptr(unsafe.Pointer(res[i-1].Event))+size, uintptr(unsafe.Pointer(r.Event)))
		}
	}
}
