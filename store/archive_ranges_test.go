package store

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func TestArchiveHolesAreTheRangesNoRunHolds(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 5, 9)))
	require.NoError(t, a.write(evs("w", 15, 20)))
	got, err := a.holes("w", 0, 25)
	require.NoError(t, err)
	require.Equal(t, []Range{{"w", 1, 4}, {"w", 10, 14}, {"w", 21, 25}}, got)
	got, err = a.holes("w", 6, 17)
	require.NoError(t, err)
	require.Equal(t, []Range{{"w", 10, 14}}, got)
	got, err = a.holes("none", 0, 3)
	require.NoError(t, err)
	require.Equal(t, []Range{{"none", 1, 3}}, got)
	require.Equal(t, uint64(5), got[0].Len()+2)
	require.Equal(t, "none 1-3", got[0].String())
}

func TestArchiveFillStoresOnlyWhatIsMissingAndReadsThenRunOn(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 5, 9)))
	require.NoError(t, a.write(evs("w", 15, 20)))
	refill := evs("w", 1, 16)
	refill[6].Player = "not stored: seq 7 is held" // a held seq is never rewritten
	n, err := a.fill("w", refill, alive(0))
	require.NoError(t, err)
	require.Equal(t, 4+5, n, "1-4 and 10-14")
	got, err := a.read("w", 1, 100)
	require.NoError(t, err)
	require.Len(t, got, 20)
	require.Empty(t, got[6].Player)
	holes, err := a.holes("w", 0, 20)
	require.NoError(t, err)
	require.Empty(t, holes)
	// Events of another world are skipped; the writer appends after fills.
	n, err = a.fill("w", evs("x", 21, 22), alive(0))
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoError(t, a.write(evs("w", 21, 22)))
	got, err = a.read("w", 18, 100)
	require.NoError(t, err)
	require.Equal(t, []uint64{18, 19, 20, 21, 22}, seqs(t, got))
}

func TestArchiveFillSplitsBigRefillsIntoRuns(t *testing.T) {
	a := openTestArchive(t)
	big := evs("w", 1, 40)
	for _, e := range big {
		e.Reason = string(bytes.Repeat([]byte{'x'}, 100))
	}
	n, err := a.fill("w", big, alive(0))
	require.NoError(t, err)
	require.Equal(t, 40, n)
	first, recs, err := a.records("w", 3, 100, 1<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(3), first)
	require.Len(t, recs, 38)
	for i, r := range recs {
		require.Equal(t, fsm.EncodeEvent(big[i+2]), r)
	}
	_, recs, err = a.records("w", 3, 100, 200)
	require.NoError(t, err)
	require.Len(t, recs, 2, "about maxBytes")
	first, recs, err = a.records("w", 41, 10, 1000)
	require.NoError(t, err)
	require.Empty(t, recs)
	require.Equal(t, uint64(41), first)
}

// A seq no longer held (retention deleted it) is answered with the oldest
// held after it; a hole after the first event ends the page.
func TestArchiveRecordsStartAtTheOldestHeldSeq(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 5, 9)))
	require.NoError(t, a.write(evs("w", 15, 16)))
	first, recs, err := a.records("w", 1, 100, 1<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(5), first)
	require.Len(t, recs, 5, "5 to 9: the hole ends the page")
	first, recs, err = a.records("w", 10, 100, 1<<20)
	require.NoError(t, err)
	require.Equal(t, uint64(15), first)
	require.Len(t, recs, 2)
}

func TestPruneRecordsWhatRetentionDeletedSoItIsNotMissing(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 1, 3)))
	require.NoError(t, a.write(evs("w", 4, 6)))
	require.NoError(t, a.write(evs("w", 7, 9)))
	_, err := a.prune(0, 3, 10)
	require.NoError(t, err)
	floor, err := a.pruned("w")
	require.NoError(t, err)
	require.Equal(t, uint64(6), floor)
	holes, err := a.holes("w", floor, 9)
	require.NoError(t, err)
	require.Empty(t, holes)
	// The mark only grows.
	require.NoError(t, a.db.Update(func(tx *bolt.Tx) error { return setPruned(tx, []byte("w"), 2) }))
	floor, err = a.pruned("w")
	require.NoError(t, err)
	require.Equal(t, uint64(6), floor)
}

// A truncated archive faults bbolt at its first read past the end (a
// crash of the whole node); it is moved aside at open, clean marker or not.
func TestTruncatedArchiveIsMovedAsideEvenAfterACleanStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	a, err := openArchive(path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	bigEvents(t, a, "w", 3000)
	require.NoError(t, a.close())
	truncated(t, path)
	a, err = openArchive(path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer a.close()
	got, err := a.read("w", 1, 10)
	require.NoError(t, err)
	require.Empty(t, got)
	aside, err := filepath.Glob(path + ".corrupt-*")
	require.NoError(t, err)
	require.Len(t, aside, 1)
	require.NoError(t, checkSize(a.db))
}

// alive is fill's view of a world that exists in incarnation inc.
func alive(inc uint64) func() (uint64, bool) { return func() (uint64, bool) { return inc, true } }

// A refill racing a world's delete stores nothing of it, and events of an
// earlier incarnation are never stored in the current one.
func TestArchiveFillSkipsDeletedWorldsAndEarlierIncarnations(t *testing.T) {
	a := openTestArchive(t)
	n, err := a.fill("w", evs("w", 1, 5), func() (uint64, bool) { return 0, false })
	require.NoError(t, err)
	require.Zero(t, n)
	got, err := a.read("w", 1, 10)
	require.NoError(t, err)
	require.Empty(t, got)
	n, err = a.fill("w", evs("w", 1, 5), alive(3)) // evs' Index is their seq
	require.NoError(t, err)
	require.Equal(t, 3, n)
	holes, err := a.holes("w", 0, 5)
	require.NoError(t, err)
	require.Equal(t, []Range{{"w", 1, 2}}, holes)
}

// Deleting a world forgets what retention pruned of it: a re-created
// world's seqs start at 1 again.
func TestDeletingAWorldForgetsItsPrunedMark(t *testing.T) {
	a := openTestArchive(t)
	require.NoError(t, a.write(evs("w", 1, 3)))
	require.NoError(t, a.write(evs("w", 4, 6)))
	require.NoError(t, a.write(evs("v", 1, 3)))
	require.NoError(t, a.write(evs("v", 4, 6)))
	_, err := a.prune(0, 3, 10)
	require.NoError(t, err)
	for _, w := range []string{"w", "v"} {
		floor, err := a.pruned(w)
		require.NoError(t, err)
		require.Equal(t, uint64(3), floor)
	}
	require.NoError(t, a.deleteWorlds([]string{"w"}))
	require.NoError(t, a.reconcile(map[string]uint64{}))
	for _, w := range []string{"w", "v"} {
		floor, err := a.pruned(w)
		require.NoError(t, err)
		require.Zero(t, floor, w)
	}
}
