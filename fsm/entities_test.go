package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEntitiesCopiesEveryEntityOfAWorldAtItsSeq(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, nil))
	h.event(act("w", "ann", 1, opSet("ann", "x", Int(1)), opIncr("box", "hp", 5), opAdd("bag", "tags", String("b"))))
	h.event(act("w", "ann", 2, opAdd("bag", "tags", String("a")), opSet("tmp", "x", Int(0))))
	h.event(act("w", "ann", 3, opDelete("tmp")))

	ents, seq, err := h.f.Entities("w")
	require.NoError(t, err)
	require.Equal(t, uint64(3), seq)
	require.Len(t, ents, 3)
	for i, id := range []string{"ann", "bag", "box"} {
		require.Equal(t, h.entity("w", id), ents[i], "as Entity reads it")
	}
	require.Equal(t, []Value{String("a"), String("b")}, ents[1].Fields[0].Set)

	// A copy: later actions do not reach it.
	h.event(act("w", "ann", 4, opSet("ann", "x", Int(2))))
	require.Equal(t, Int(1), ents[0].Fields[0].Value)

	_, _, err = h.f.Entities("nowhere")
	require.ErrorIs(t, err, ErrUnknownWorld)
}
