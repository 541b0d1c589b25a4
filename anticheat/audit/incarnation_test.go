package audit

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAnIncarnationsTreeIsNotAnotherIncarnationsTree(t *testing.T) {
	evs := events("arena", 6)
	l, err := OpenIncarnation("arena", 40, &MemStore{})
	require.NoError(t, err)
	require.Equal(t, uint64(40), l.Incarnation())
	require.NoError(t, l.Append(evs...))
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, uint64(40), cp.Incarnation)

	// The same events logged as another incarnation: same root, and still
	// no proof, refill or earlier checkpoint crosses incarnations.
	old, _ := newLog(t, "arena", 6)
	oldCP, err := old.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, oldCP.Root, cp.Root)
	p, err := l.ProveConsistency(3, 6)
	require.NoError(t, err)
	small := oldCP
	small.Size = 3
	require.ErrorIs(t, CheckConsistency(small, cp, p), ErrProof)
	_, err = l.VerifyEvents(oldCP, evs...)
	require.ErrorIs(t, err, ErrProof)
	m := newMatchLog(t)
	later := m.cp
	later.Incarnation = 40
	_, err = VerifyLog(ndjson(m.lines), later, nil, m.cp)
	require.ErrorIs(t, err, ErrCheckpoint)
}

func TestEventsAfterATombstoneAreInserted(t *testing.T) {
	m := newMatchLog(t)
	cp := m.cp
	cp.Tombstone = true
	rep, err := VerifyLog(ndjson(m.lines), cp, m.leaves)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)

	// The export of 20 events checked against a tombstone of the first 19.
	l, _ := newLog(t, "arena", 19)
	cp, err = l.Checkpoint()
	require.NoError(t, err)
	cp.Tombstone = true
	rep, err = VerifyLog(ndjson(m.lines), cp, nil)
	require.NoError(t, err)
	require.Len(t, rep.Problems, 1)
	require.Equal(t, Inserted, rep.Problems[0].Kind)
	require.Equal(t, uint64(20), rep.Problems[0].Seq)
	require.Equal(t, 1, rep.Beyond)
}
