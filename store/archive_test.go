package store

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func openTestArchive(t *testing.T) *archive {
	t.Helper()
	a, err := openArchive(filepath.Join(t.TempDir(), "events.db"), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.close() })
	return a
}

// evs returns events of world with seqs from..to, leader time = seq.
func evs(world string, from, to uint64) []*fsm.Event {
	var out []*fsm.Event
	for s := from; s <= to; s++ {
		out = append(out, &fsm.Event{World: world, Seq: s, Index: s, Time: int64(s), Status: fsm.StatusApplied})
	}
	return out
}

func seqs(t *testing.T, got []*fsm.Event) []uint64 {
	t.Helper()
	out := make([]uint64, len(got))
	for i, ev := range got {
		out[i] = ev.Seq
	}
	return out
}

func TestArchiveReadsAcrossRunsFromAnyPosition(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 1, 5)))
	require.NoError(t, a.write(append(evs("w", 6, 8), evs("x", 1, 2)...)))
	require.NoError(t, a.write(evs("w", 9, 12)))

	got, err := a.read("w", 3, 100)
	require.NoError(t, err)
	require.Equal(t, []uint64{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, seqs(t, got))
	got, err = a.read("w", 7, 3)
	require.NoError(t, err)
	require.Equal(t, []uint64{7, 8, 9}, seqs(t, got))
	got, err = a.read("x", 1, 100)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2}, seqs(t, got))
	for _, missing := range []struct {
		world string
		seq   uint64
	}{{"w", 13}, {"nope", 1}, {"x", 0}} {
		ev, err := a.get(missing.world, missing.seq)
		require.NoError(t, err)
		require.Nil(t, ev, "%s %d", missing.world, missing.seq)
	}
}

// A write's keys and values share one arena that the next write reuses:
// what bbolt committed must not change when the arena moves mid-write
// (a big run after a small one), when a later write overwrites it, or when
// an arena grown past maxArena is dropped.
func TestArchiveKeepsEventsWrittenFromItsReusedArena(t *testing.T) {
	a := openTestArchive(t)
	big := uint64(maxArena/20 + 1) // over maxArena encoded
	require.NoError(t, a.write(append(evs("w", 1, 3), evs("x", 1, big)...)))
	require.Greater(t, cap(a.arena), maxArena)
	require.NoError(t, a.write(evs("w", 4, 5)))
	require.LessOrEqual(t, cap(a.arena), maxArena, "the big arena was dropped")
	require.NoError(t, a.write(evs("y", 1, 2)))

	for world, last := range map[string]uint64{"w": 5, "x": big, "y": 2} {
		var got []*fsm.Event
		for next := uint64(1); next <= last; {
			part, err := a.read(world, next, 1000)
			require.NoError(t, err)
			require.NotEmpty(t, part, "%s from %d", world, next)
			got = append(got, part...)
			next += uint64(len(part))
		}
		require.Len(t, got, int(last), world)
		for i, ev := range got {
			require.Equal(t, world, ev.World)
			require.Equal(t, uint64(i+1), ev.Seq, world)
			require.Equal(t, int64(i+1), ev.Time, world)
		}
	}
}

// A round bigger than maxRunBytes is stored as several runs, each within
// the bound (bbolt rewrites the last leaf's runs on every append), and
// reads across them.
func TestArchiveCutsABigRoundIntoBoundedRuns(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 1, 500)))
	runs := 0
	require.NoError(t, a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(eventsBucket).Bucket([]byte("w")).ForEach(func(k, v []byte) error {
			runs++
			require.LessOrEqual(t, len(v), maxRunBytes+2*binary.MaxVarintLen64, "run %d", binary.BigEndian.Uint64(k))
			return nil
		})
	}))
	require.Greater(t, runs, 1)
	var want []uint64
	for s := uint64(1); s <= 500; s++ {
		want = append(want, s)
	}
	got, err := a.read("w", 1, 1000)
	require.NoError(t, err)
	require.Equal(t, want, seqs(t, got))
	got, err = a.read("w", 250, 100)
	require.NoError(t, err)
	require.Equal(t, want[249:349], seqs(t, got), "from inside a run, up to max")
}

func TestArchiveSkipsReplayedEventsAndStopsAtHoles(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 1, 10)))
	// A restart replays 6..12: only 11 and 12 are new.
	require.NoError(t, a.write(evs("w", 6, 12)))
	// A snapshot install jumps from 12 to 20.
	require.NoError(t, a.write(append(evs("w", 13, 14), evs("w", 20, 21)...)))

	got, err := a.read("w", 1, 100)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, seqs(t, got), "stops at the hole")
	ev, err := a.get("w", 15)
	require.NoError(t, err)
	require.Nil(t, ev)
	got, err = a.read("w", 20, 100)
	require.NoError(t, err)
	require.Equal(t, []uint64{20, 21}, seqs(t, got))
}

func TestArchivePruneDropsWholeRunsByCountAndByAge(t *testing.T) {
	a := openTestArchive(t)
	for from := uint64(1); from <= 50; from += 10 {
		require.NoError(t, a.write(evs("w", from, from+9))) // runs 1-10 ... 41-50
	}
	// Keep the newest 15: runs ending at 10, 20 and 30 lie wholly before them.
	n, err := a.prune(0, 15, 1)
	require.NoError(t, err)
	require.Equal(t, 30, n)
	ev, err := a.get("w", 30)
	require.NoError(t, err)
	require.Nil(t, ev)
	got, err := a.read("w", 31, 100)
	require.NoError(t, err)
	require.Len(t, got, 20)

	// By age: a run goes when its newest event is older than minTime.
	n, err = a.prune(41, 0, 10)
	require.NoError(t, err)
	require.Equal(t, 10, n)
	got, err = a.read("w", 41, 100)
	require.NoError(t, err)
	require.Len(t, got, 10)
	n, err = a.prune(0, 0, 10)
	require.NoError(t, err)
	require.Zero(t, n, "no bounds, nothing goes")
}

func TestArchiveReportsCorruptRuns(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 1, 3)))
	put := func(v []byte) {
		require.NoError(t, a.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(eventsBucket).Bucket([]byte("w")).Put(seqKey(1), v)
		}))
	}
	for name, v := range map[string][]byte{
		"empty":            {},
		"no time":          binary.AppendUvarint(nil, 3),
		"truncated record": append(binary.AppendVarint(binary.AppendUvarint(nil, 3), 1), 9, 1),
		"bad event":        append(binary.AppendVarint(binary.AppendUvarint(nil, 3), 1), 1, 0xff),
	} {
		put(v)
		_, err := a.read("w", 1, 10)
		require.ErrorIs(t, err, fsm.ErrMalformed, name)
		_, err = a.prune(0, 1, 10)
		if name == "empty" || name == "no time" {
			require.ErrorIs(t, err, fsm.ErrMalformed, name)
		}
	}
}

// A failing archive write (a full disk) keeps its events and retries; in
// the meantime a snapshot cannot be persisted, so Raft keeps its log.
func TestArchiveWriteFailureIsRetriedWithoutLosingEvents(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	var failing atomic.Bool
	failing.Store(true)
	fail := func() error {
		if failing.Load() {
			return errors.New("no space left on device")
		}
		return nil
	}
	s.arch.failWrite.Store(&fail)
	for seq := uint64(1); seq <= 5; seq++ {
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	err := s.feed.waitArchived(s.adapter.appliedIndex())
	require.ErrorContains(t, err, "no space left")
	_, err = s.Snapshot(ctxT(t))
	require.ErrorContains(t, err, "no space left", "no snapshot (and no log compaction) while events are not durable")
	failing.Store(false) // the disk has room again: the writer's retry succeeds
	require.Eventually(t, func() bool { return s.feed.waitArchived(s.adapter.appliedIndex()) == nil },
		30*time.Second, 10*time.Millisecond)
	got, err := s.arch.read("arena", 1, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, seqs(t, got))
}

// After a restart from a snapshot nothing new is published until a write:
// the next snapshot (and Close) must not wait for the archive regardless.
func TestSnapshotAfterRestartFromSnapshotDoesNotHang(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	s := c.leader()
	mustCreateWorld(t, s, "arena")
	for seq := uint64(1); seq <= 5; seq++ {
		_, _, err := s.Act(ctxT(t), incr("arena", "p1", seq, "e1", "score", 1))
		require.NoError(t, err)
	}
	_, err := s.Snapshot(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
	s = c.restart(0)
	c.waitLeader() // its no-op and barrier entries are newer than the snapshot
	done := make(chan error, 1)
	go func() {
		_, err := s.Snapshot(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("snapshot after restart is stuck waiting for the archive")
	}
}

// After an unclean shutdown the archive is checked: a sound file is kept, a
// corrupt one (a power loss with NoSync writes) is moved aside and replaced
// by an empty archive rather than crashing the node or serving garbage.
func TestArchiveIsCheckedAfterAnUncleanShutdownAndReplacedWhenCorrupt(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	held := func(a *archive) []uint64 {
		t.Helper()
		got, err := a.read("w", 1, 100)
		require.NoError(t, err)
		return seqs(t, got)
	}

	a, err := openArchive(path, log)
	require.NoError(t, err)
	require.NoError(t, a.write(evs("w", 1, 5)))
	require.NoError(t, a.close())
	require.FileExists(t, path+".clean")

	// Clean reopen: the marker is consumed while the archive is open.
	a, err = openArchive(path, log)
	require.NoError(t, err)
	require.NoFileExists(t, path+".clean")
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, held(a))

	// Unclean shutdown of a sound file (a kill: the page cache kept every
	// write): checked and kept.
	require.NoError(t, a.write(evs("w", 6, 7)))
	require.NoError(t, a.db.Close())
	a, err = openArchive(path, log)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6, 7}, held(a))
	require.NoError(t, a.db.Close())

	// Unclean shutdown of a corrupt file: moved aside, an empty archive.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	info, err := f.Stat()
	require.NoError(t, err)
	junk := make([]byte, info.Size()-8192)
	for i := range junk {
		junk[i] = 0xA5
	}
	_, err = f.WriteAt(junk, 8192) // every page after the two meta pages
	require.NoError(t, err)
	require.NoError(t, f.Close())
	a, err = openArchive(path, log)
	require.NoError(t, err)
	defer a.close()
	require.Empty(t, held(a))
	aside, err := filepath.Glob(path + ".corrupt-*")
	require.NoError(t, err)
	require.Len(t, aside, 1)
	require.NoError(t, a.write(evs("w", 8, 9)), "the fresh archive takes new events")
}
