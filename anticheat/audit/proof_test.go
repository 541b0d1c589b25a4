package audit

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestAnEventChecksAgainstASignedCheckpointByItsProof(t *testing.T) {
	l, evs := newLog(t, "arena", 12)
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	for _, e := range evs {
		p, err := l.ProveInclusion(e.Seq, cp.Size)
		require.NoError(t, err)
		require.NoError(t, CheckInclusion(cp, e, p))
	}
	p, err := l.ProveInclusion(5, cp.Size)
	require.NoError(t, err)
	changed := *evs[4]
	changed.Player = "mallory"
	require.ErrorIs(t, CheckInclusion(cp, &changed, p), ErrProof)
	require.ErrorIs(t, CheckInclusion(cp, evs[5], p), ErrProof, "another seq's proof")
	other := *evs[4]
	other.World = "lobby"
	require.ErrorIs(t, CheckInclusion(cp, &other, p), ErrProof)
	later := *evs[4]
	later.Seq = 13
	require.ErrorIs(t, CheckInclusion(cp, &later, p), ErrProof)
}

func TestALaterCheckpointChecksAsAnExtensionOfAnEarlierOne(t *testing.T) {
	l, evs := newLog(t, "arena", 5)
	older, err := l.Checkpoint()
	require.NoError(t, err)
	empty, err := (&Log{world: "arena", store: &MemStore{}}).Checkpoint()
	require.NoError(t, err)
	require.NoError(t, l.Append(events("arena", 9)[5:]...))
	newer, err := l.Checkpoint()
	require.NoError(t, err)
	p, err := l.ProveConsistency(5, 9)
	require.NoError(t, err)
	require.NoError(t, CheckConsistency(older, newer, p))
	require.NoError(t, CheckConsistency(empty, newer, nil), "the empty log is a prefix of every log")
	same, err := l.ProveConsistency(9, 9)
	require.NoError(t, err)
	require.NoError(t, CheckConsistency(newer, newer, same))

	// A rewritten history: a log whose fifth event differs.
	fe := *evs[4]
	fe.Player = "mallory"
	fork, err := Open("arena", &MemStore{})
	require.NoError(t, err)
	require.NoError(t, fork.Append(evs[:4]...))
	require.NoError(t, fork.Append(&fe))
	forkedOld, err := fork.Checkpoint()
	require.NoError(t, err)
	require.ErrorIs(t, CheckConsistency(forkedOld, newer, p), ErrProof)

	for name, c := range map[string][2]Checkpoint{
		"other world":       {{Origin: "lobby", Size: 5, Root: older.Root}, newer},
		"older larger":      {newer, older},
		"empty, wrong root": {{Origin: "arena", Root: tlog.Hash{1}}, newer},
	} {
		require.ErrorIs(t, CheckConsistency(c[0], c[1], p), ErrProof, name)
	}
}
