package auditor

import (
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// TestASaltedWorldsTreeHasVersion2LeavesFromTheEventsSaltings: the
// follower commits to what each event's Salted says (not to a table it
// would read later), and its checkpoints say "leaf 2".
func TestASaltedWorldsTreeHasVersion2LeavesFromTheEventsSaltings(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.salted["arena"] = true
	src.add("arena", 6)
	p1 := &fsm.Salting{Names: []fsm.SaltedName{{Name: "p1", Digest: wire.SaltedID(make([]byte, 32), "p1")}}}
	src.mu.Lock()
	for _, e := range src.events["arena"] {
		if e.Player == "p1" {
			e.Salted = p1
		}
	}
	src.mu.Unlock()
	src.add("lobby", 2)

	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, a)
	waitSize(t, a, "arena", 6)
	waitSize(t, a, "lobby", 2)

	l, err := a.Log("arena")
	require.NoError(t, err)
	require.Equal(t, wire.AuditLeafV2, l.LeafVersion())
	mem, err := audit.OpenSalted("arena", 0, &audit.MemStore{})
	require.NoError(t, err)
	for _, e := range src.events["arena"] {
		w := e.Wire()
		require.NoError(t, mem.AppendSalted([]*wire.Event{&w}, []wire.SaltedIDs{e.Salted.Lookup}))
	}
	wantCP, err := mem.Checkpoint()
	require.NoError(t, err)
	got, err := l.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, wantCP, got)
	require.Equal(t, wire.AuditLeafV2, got.Leaf)
	require.NotEqual(t, want(t, src, "arena").Root, got.Root)

	lobby, err := a.Log("lobby")
	require.NoError(t, err)
	require.Equal(t, wire.AuditLeafV1, lobby.LeafVersion())
}
