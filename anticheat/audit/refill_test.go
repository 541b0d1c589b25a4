package audit

import (
	"errors"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestVerifyEventsAcceptsTheLoggedEventsAndStopsPastTheCheckpoint(t *testing.T) {
	l, evs := newLog(t, "arena", 40)
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	n, err := l.VerifyEvents(cp, evs[9:30]...)
	require.NoError(t, err)
	require.Equal(t, 21, n)

	// An older checkpoint: the events after it are not verified, not refused.
	old := Checkpoint{Origin: "arena", Size: 20, Root: rootOf(leafHashes(evs[:20]))}
	n, err = l.VerifyEvents(old, evs[9:30]...)
	require.NoError(t, err)
	require.Equal(t, 11, n)

	empty := Checkpoint{Origin: "arena", Size: 0, Root: rootOf(nil)}
	n, err = l.VerifyEvents(empty, evs[0])
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestVerifyEventsRefusesAChangedEventAndNamesWhereItStopped(t *testing.T) {
	l, evs := newLog(t, "arena", 40)
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	forged := *evs[14]
	forged.Player = "mallory"
	page := append(append([]*wire.Event{}, evs[10:14]...), &forged, evs[15])
	n, err := l.VerifyEvents(cp, page...)
	require.ErrorIs(t, err, ErrProof)
	require.Equal(t, 4, n)

	other := *evs[3]
	other.World = "other"
	n, err = l.VerifyEvents(cp, &other)
	require.ErrorIs(t, err, ErrProof)
	require.Zero(t, n)
	zero := *evs[0]
	zero.Seq = 0
	_, err = l.VerifyEvents(cp, &zero)
	require.ErrorIs(t, err, ErrProof)
}

func TestVerifyEventsRefusesACheckpointTheLogDoesNotMatch(t *testing.T) {
	l, evs := newLog(t, "arena", 8)
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	_, err = l.VerifyEvents(Checkpoint{Origin: "other", Size: cp.Size, Root: cp.Root}, evs[0])
	require.ErrorIs(t, err, ErrProof)
	_, err = l.VerifyEvents(Checkpoint{Origin: "arena", Size: 9, Root: cp.Root}, evs[0])
	require.ErrorIs(t, err, ErrRange)
	_, err = l.VerifyEvents(Checkpoint{Origin: "arena", Size: -1}, evs[0])
	require.ErrorIs(t, err, ErrRange)
	bad := cp
	bad.Root[0] ^= 1
	_, err = l.VerifyEvents(bad, evs[0])
	require.ErrorIs(t, err, ErrProof)
}

func TestVerifyEventsReportsHashStoreFailures(t *testing.T) {
	boom := errors.New("disk gone")
	fs := &countdownStore{}
	l, err := Open("arena", fs)
	require.NoError(t, err)
	evs := events("arena", 8)
	require.NoError(t, l.Append(evs...))
	cp, err := l.Checkpoint()
	require.NoError(t, err)

	fs.fail, fs.after = boom, 0 // the root cannot be read
	_, err = l.VerifyEvents(cp, evs[0])
	require.ErrorIs(t, err, boom)

	fs.after = 1 // the root reads, the proof does not
	n, err := l.VerifyEvents(cp, evs[2])
	require.ErrorIs(t, err, boom)
	require.Zero(t, n)
}

// countdownStore fails every read after the first after ones.
type countdownStore struct {
	MemStore
	fail  error
	after int
}

func (c *countdownStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	if c.fail != nil {
		if c.after == 0 {
			return nil, c.fail
		}
		c.after--
	}
	return c.MemStore.ReadHashes(idx)
}

func leafHashes(evs []*wire.Event) []tlog.Hash {
	out := make([]tlog.Hash, len(evs))
	for i, e := range evs {
		out[i] = LeafHash(e)
	}
	return out
}
