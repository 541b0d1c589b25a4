package auditor

import (
	"errors"
	"testing"
	"time"

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

// TestASaltedTombstoneWrittenAfterARestartSaysLeaf2: a salted incarnation
// deleted while the node was down is reopened with the leaf version kept
// with its tree, so its tombstone says "leaf 2" as on a node that
// followed the delete.
func TestASaltedTombstoneWrittenAfterARestartSaysLeaf2(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.salted["arena"] = true
	src.add("arena", 3)
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	stop := run(a)
	waitSize(t, a, "arena", 3)
	l, err := a.Log("arena")
	require.NoError(t, err)
	require.Equal(t, wire.AuditLeafV2, l.LeafVersion())
	stop()

	src.recreate("arena", 9) // deleted while down, created again
	src.salted["arena"] = false
	b, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, b)
	require.Eventually(t, func() bool { return st.tomb("arena", 0) != "" }, 10*time.Second, time.Millisecond)
	cp, err := audit.ParseCheckpoint(st.tomb("arena", 0))
	require.NoError(t, err)
	require.True(t, cp.Tombstone)
	require.Equal(t, wire.AuditLeafV2, cp.Leaf, "the tombstone of a salted tree says leaf 2: %q", st.tomb("arena", 0))
	old, err := b.LogOf("arena", 0)
	require.NoError(t, err)
	require.Equal(t, wire.AuditLeafV2, old.LeafVersion())
}

// TestALeafVersionThatCannotBeKeptOrReadFailsTheOpen: a salted tree
// whose leaf version cannot be kept is not opened (retried at the next
// scan); an old tree whose version cannot be read is not either.
func TestALeafVersionThatCannotBeKeptOrReadFailsTheOpen(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	boom := errors.New("disk full")
	src.salted["arena"] = true
	src.add("arena", 3)
	st.set(func(s *stores) { s.leafErr = boom })
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	_, err = a.Log("arena")
	require.ErrorIs(t, err, boom)
	require.Contains(t, logs.String(), "audit log cannot be opened")

	st.set(func(s *stores) { s.leafErr = nil })
	b, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	_, err = b.Log("arena")
	require.NoError(t, err)
	src.recreate("arena", 9)
	src.salted["arena"] = false
	st.set(func(s *stores) { s.leafErr = boom })
	c, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	_, err = c.LogOf("arena", 0)
	require.ErrorIs(t, err, boom)
	require.Contains(t, logs.String(), "audit tree of a deleted incarnation cannot be opened")
}
