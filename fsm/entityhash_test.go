package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEntityHashIsTheSumOfItsFieldsHashes(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", rules(false, map[string]FieldRule{
		"best": {Type: KindFloat, Policy: PolicyMax},
		"tags": {Type: KindString, Policy: PolicySet},
	}))
	h.event(act("w", "ann", 1, opSet("ann", "x", Int(1)), opIncr("box", "hp", 5), opAdd("box", "tags", String("b")),
		opSet("ann", "best", Int(3)), opRemove("bag", "loot", String("gone"))))
	h.event(act("w", "ann", 2, opAdd("box", "tags", String("a")), opIncr("box", "hp", -2), opSet("ann", "best", Float(2)),
		opSet("tmp", "y", Bool(true))))
	h.event(act("w", "ann", 3, opDelete("tmp")))

	kinds := map[string]Kind{"x": KindInt, "hp": KindInt, "tags": KindString, "best": KindFloat, "loot": KindString}
	ents, _, err := h.f.Entities("w")
	require.NoError(t, err)
	var sum uint64
	for _, e := range ents {
		for _, fv := range e.Fields {
			sum += FieldHash(e.ID, fv, kinds[fv.Name])
		}
	}
	hash, seq, err := h.f.EntityHash("w")
	require.NoError(t, err)
	require.Equal(t, uint64(3), seq)
	require.Equal(t, sum, hash)
	require.NotZero(t, hash)

	_, _, err = h.f.EntityHash("nowhere")
	require.ErrorIs(t, err, ErrUnknownWorld)
}
