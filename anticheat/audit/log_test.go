package audit

import (
	"errors"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestLogAppendsInSeqOrderAndRefusesGaps(t *testing.T) {
	l, evs := newLog(t, "arena", 5)
	require.Equal(t, int64(5), l.Size())
	require.Equal(t, "arena", l.World())
	next := events("arena", 8)

	err := l.Append(next[6])
	require.ErrorIs(t, err, ErrGap)
	require.ErrorContains(t, err, "seq 7 after seq 5")
	require.ErrorIs(t, l.Append(&wire.Event{World: "arena"}), ErrGap, "seq 0")
	require.ErrorIs(t, l.Append(&wire.Event{World: "other", Seq: 6}), ErrWrongWorld)

	// A refused batch logs nothing, even its good prefix.
	require.ErrorIs(t, l.Append(next[5], next[7]), ErrGap)
	require.Equal(t, int64(5), l.Size())
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, int64(5), cp.Size)

	// The feed delivers at least once: a repeat is accepted, a changed
	// repeat is divergence.
	require.NoError(t, l.Append(evs[3], evs[4], next[5]))
	require.Equal(t, int64(6), l.Size())
	changed := *evs[2]
	changed.Player = "mallory"
	err = l.Append(&changed)
	require.ErrorIs(t, err, ErrDiverged)
	require.ErrorContains(t, err, "seq 3")
	require.NoError(t, l.Append(), "nothing to append")
}

func TestLogRootIsTheRFC6962RootOfTheLeaves(t *testing.T) {
	l, evs := newLog(t, "arena", 3)
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	h := func(i int) tlog.Hash { return LeafHash(evs[i]) }
	require.Equal(t, tlog.NodeHash(tlog.NodeHash(h(0), h(1)), h(2)), cp.Root)
	require.Equal(t, Checkpoint{Origin: "arena", Size: 3, Root: cp.Root}, cp)

	for n := 0; n <= 33; n++ {
		l, evs := newLog(t, "w", n)
		cp, err := l.Checkpoint()
		require.NoError(t, err)
		leaves := make([]tlog.Hash, n)
		for i, e := range evs {
			leaves[i] = LeafHash(e)
		}
		require.Equal(t, rootOf(leaves), cp.Root, "size %d", n)
	}
}

func TestLogReopensFromItsStore(t *testing.T) {
	store := &MemStore{}
	l, err := Open("arena", store)
	require.NoError(t, err)
	evs := events("arena", 11)
	require.NoError(t, l.Append(evs[:4]...))
	require.NoError(t, l.Append(evs[4:]...))
	want, err := l.Checkpoint()
	require.NoError(t, err)

	again, err := Open("arena", store)
	require.NoError(t, err)
	require.Equal(t, int64(11), again.Size())
	got, err := again.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, want, got)

	// A store cut in the middle of an event's hashes is corrupt.
	cut := &MemStore{}
	require.NoError(t, cut.AppendHashes(0, []tlog.Hash{{1}, {2}}))
	_, err = Open("arena", cut)
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestInclusionProofsCheckAgainstEveryTreeThatHoldsTheEvent(t *testing.T) {
	l, evs := newLog(t, "arena", 17)
	for size := int64(1); size <= 17; size++ {
		var leaves []tlog.Hash
		for _, e := range evs[:size] {
			leaves = append(leaves, LeafHash(e))
		}
		root := rootOf(leaves)
		for seq := uint64(1); seq <= uint64(size); seq++ {
			p, err := l.ProveInclusion(seq, size)
			require.NoError(t, err)
			require.NoError(t, tlog.CheckRecord(p, size, root, int64(seq)-1, LeafHash(evs[seq-1])))
			other := LeafHash(evs[seq%uint64(size)])
			if size > 1 {
				require.Error(t, tlog.CheckRecord(p, size, root, int64(seq)-1, other))
			}
		}
	}
	for _, c := range []struct {
		seq  uint64
		size int64
	}{{0, 5}, {6, 5}, {1, 18}} {
		_, err := l.ProveInclusion(c.seq, c.size)
		require.ErrorIs(t, err, ErrRange)
	}
}

func TestConsistencyProofsCheckEveryPrefix(t *testing.T) {
	l, evs := newLog(t, "arena", 13)
	roots := make([]tlog.Hash, 14)
	for n := 1; n <= 13; n++ {
		var leaves []tlog.Hash
		for _, e := range evs[:n] {
			leaves = append(leaves, LeafHash(e))
		}
		roots[n] = rootOf(leaves)
	}
	for newSize := int64(1); newSize <= 13; newSize++ {
		for oldSize := int64(1); oldSize <= newSize; oldSize++ {
			p, err := l.ProveConsistency(oldSize, newSize)
			require.NoError(t, err)
			require.NoError(t, tlog.CheckTree(p, newSize, roots[newSize], oldSize, roots[oldSize]))
			if oldSize < newSize {
				require.Error(t, tlog.CheckTree(p, newSize, roots[newSize], oldSize, roots[newSize]))
			}
		}
	}
	for _, c := range [][2]int64{{0, 5}, {6, 5}, {1, 14}} {
		_, err := l.ProveConsistency(c[0], c[1])
		require.ErrorIs(t, err, ErrRange)
	}
}

func TestLeafHashesAreTheEventsLeaves(t *testing.T) {
	l, evs := newLog(t, "arena", 6)
	got, err := l.LeafHashes(2, 4)
	require.NoError(t, err)
	require.Equal(t, []tlog.Hash{LeafHash(evs[1]), LeafHash(evs[2]), LeafHash(evs[3])}, got)
	for _, r := range [][2]uint64{{0, 1}, {3, 2}, {1, 7}} {
		_, err := l.LeafHashes(r[0], r[1])
		require.ErrorIs(t, err, ErrRange)
	}
}

func TestLogReportsItsStoresFailures(t *testing.T) {
	boom := errors.New("boom")
	_, err := Open("arena", &failingStore{count: boom})
	require.ErrorIs(t, err, boom)

	fs := &failingStore{}
	l, err := Open("arena", fs)
	require.NoError(t, err)
	evs := events("arena", 4)
	require.NoError(t, l.Append(evs[:3]...))

	fs.appendErr = boom
	require.ErrorIs(t, l.Append(evs[3]), boom)
	require.Equal(t, int64(3), l.Size())
	fs.appendErr = nil

	fs.read = boom
	require.ErrorIs(t, l.Append(evs[3]), boom, "the new leaf needs the old subtrees")
	require.ErrorIs(t, l.Append(evs[0]), boom, "a repeat is compared with its leaf")
	_, err = l.Checkpoint()
	require.ErrorIs(t, err, boom)
	_, err = l.ProveInclusion(1, 2)
	require.ErrorIs(t, err, boom)
	_, err = l.ProveConsistency(1, 2)
	require.ErrorIs(t, err, boom)
	_, err = l.LeafHashes(1, 2)
	require.ErrorIs(t, err, boom)
	fs.read = nil

	fs.short = true
	require.ErrorIs(t, l.Append(evs[3]), ErrCorrupt)
	fs.short = false
	require.NoError(t, l.Append(evs[3]))
	require.Equal(t, int64(4), l.Size())
}

func TestMemStoreRefusesWhatItDoesNotHold(t *testing.T) {
	var m MemStore
	require.Error(t, m.AppendHashes(1, []tlog.Hash{{}}))
	require.NoError(t, m.AppendHashes(0, []tlog.Hash{{7}}))
	_, err := m.ReadHashes([]int64{1})
	require.Error(t, err)
	_, err = m.ReadHashes([]int64{-1})
	require.Error(t, err)
	h, err := m.ReadHashes([]int64{0})
	require.NoError(t, err)
	require.Equal(t, []tlog.Hash{{7}}, h)
}

func TestLogServesCheckedProofsWhileItAppends(t *testing.T) {
	l, err := Open("arena", &MemStore{})
	require.NoError(t, err)
	evs := events("arena", 300)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < len(evs); i += 7 {
			if err := l.Append(evs[i:min(i+7, len(evs))]...); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	check := func() {
		cp, err := l.Checkpoint()
		require.NoError(t, err)
		if cp.Size == 0 {
			return
		}
		seq := uint64(cp.Size+1) / 2
		p, err := l.ProveInclusion(seq, cp.Size)
		require.NoError(t, err)
		require.NoError(t, CheckInclusion(cp, evs[seq-1], p))
	}
	for running := true; running; {
		select {
		case err := <-done:
			require.NoError(t, err)
			running = false
		default:
		}
		check()
	}
	require.Equal(t, int64(300), l.Size())
	check()
}
