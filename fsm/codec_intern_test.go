package fsm

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func incrBatch(world string, players []string, entity string) []byte {
	cmds := make([]Command, len(players))
	for i, p := range players {
		cmds[i] = cmdAction(act(world, p, uint64(i+1), opIncr(entity, "hp", 1)))
	}
	return EncodeBatch(&Batch{Time: 1, Commands: cmds})
}

// Apply decodes the same players and entities entry after entry: the
// second time their names come from the scratch's table, the same strings,
// and decoding such an entry allocates nothing at all.
func TestDecodeIntoScratchInternsPlayerAndEntityNames(t *testing.T) {
	p := incrBatch("arena", []string{"ann", "bob"}, "e1")
	var s decodeScratch
	first, err := decodeBatchInto(p, &s)
	require.NoError(t, err)
	ann, e1 := first.Commands[0].Action.Player, first.Commands[0].Action.Ops[0].Entity

	again, err := decodeBatchInto(p, &s)
	require.NoError(t, err)
	require.Equal(t, "ann", again.Commands[0].Action.Player)
	require.Same(t, unsafe.StringData(ann), unsafe.StringData(again.Commands[0].Action.Player))
	require.Same(t, unsafe.StringData(e1), unsafe.StringData(again.Commands[1].Action.Ops[0].Entity))
	require.Equal(t, 0.0, testing.AllocsPerRun(10, func() {
		if _, err := decodeBatchInto(p, &s); err != nil {
			t.Fatal(err)
		}
	}))
}

// The table forgets everything when full rather than grow, and a name too
// long to be valid is not remembered (the action is rejected all the same).
func TestDecodeInternTableIsBoundedAndSkipsInvalidNames(t *testing.T) {
	var s decodeScratch
	s.names = make(map[string]string, maxInterned)
	for i := range maxInterned {
		k := fmt.Sprint("old-", i)
		s.names[k] = k
	}
	long := strings.Repeat("p", MaxNameLen+1)
	p := incrBatch("arena", []string{"ann", long}, "e1")
	got, err := decodeBatchInto(p, &s)
	require.NoError(t, err)
	fresh, err := decodeBatch(p)
	require.NoError(t, err)
	require.Equal(t, fresh.Batch, got.Batch)
	require.Equal(t, map[string]string{"arena": "arena", "ann": "ann", "e1": "e1", "hp": "hp"}, s.names)

	h := newHarness(t)
	h.createWorld("arena", rules(false, nil))
	res := h.f.Apply(2, p)
	require.Equal(t, StatusApplied, res[0].Event.Status)
	require.Equal(t, StatusRejected, res[1].Event.Status)
	require.Equal(t, CodeMalformed, res[1].Event.Reason)
	require.NotContains(t, h.f.scratch.names, long)
}
