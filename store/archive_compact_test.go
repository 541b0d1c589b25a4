package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// bigEvents writes n events of world of about 1 KB each, in rounds.
func bigEvents(t *testing.T, a *archive, world string, n uint64) {
	t.Helper()
	for from := uint64(1); from <= n; from += 100 {
		batch := evs(world, from, min(from+99, n))
		for _, e := range batch {
			e.Reason = string(bytes.Repeat([]byte{'r'}, 1000))
		}
		require.NoError(t, a.write(batch))
	}
}

// Retention deletes old runs but the file keeps its size; compaction
// gives the space back, and the events kept read the same.
func TestCompactionShrinksThePrunedArchiveAndKeepsRetainedEvents(t *testing.T) {
	a := openTestArchive(t)
	bigEvents(t, a, "w", 4000)
	bigEvents(t, a, "x", 200)
	n, err := a.prune(0, 100, 10000) // the newest 100 per world stay
	require.NoError(t, err)
	require.Positive(t, n)
	size, free, err := a.space()
	require.NoError(t, err)
	require.True(t, compactWorth(size, free), "size %d free %d", size, free)
	_, keptW, err := a.records("w", 3901, 1000, 1<<30)
	require.NoError(t, err)
	require.Len(t, keptW, 100)
	_, keptX, err := a.records("x", 101, 1000, 1<<30)
	require.NoError(t, err)
	require.Len(t, keptX, 100)
	floor, err := a.pruned("w")
	require.NoError(t, err)

	before, after, err := a.compact()
	require.NoError(t, err)
	require.Less(t, after, before/2, "the file shrank")
	st, err := os.Stat(a.db.Path())
	require.NoError(t, err)
	require.Equal(t, after, st.Size())
	require.NoFileExists(t, a.db.Path()+compactSuffix)

	_, got, err := a.records("w", 3901, 1000, 1<<30)
	require.NoError(t, err)
	require.Equal(t, keptW, got, "retained events unchanged")
	_, got, err = a.records("x", 101, 1000, 1<<30)
	require.NoError(t, err)
	require.Equal(t, keptX, got)
	f2, err := a.pruned("w")
	require.NoError(t, err)
	require.Equal(t, floor, f2, "what retention deleted is still known")
	require.NoError(t, a.write(evs("w", 4001, 4002)), "the compacted archive takes new events")
	got2, err := a.read("w", 4000, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{4000, 4001, 4002}, seqs(t, got2))
}

func TestCompactWorthNeedsHalfTheDataAndAMegabyteFree(t *testing.T) {
	require.False(t, compactWorth(1<<30, 1<<28), "a quarter free")
	require.True(t, compactWorth(1<<30, 1<<29))
	require.False(t, compactWorth(1<<20, 1<<19), "too little to bother")
	require.True(t, compactWorth(2<<20, 1<<20))
}

// The pruner compacts after a prune that freed enough; a copy left by a
// crash mid-compaction is dropped at open.
func TestPrunerCompactsAndOpenDropsAnInterruptedCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	a, err := openArchive(path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	bigEvents(t, a, "w", 3000)
	_, err = a.prune(0, 50, 10000)
	require.NoError(t, err)
	f := newFeed(a, 16, slog.New(slog.DiscardHandler))
	size, free, err := a.space()
	require.NoError(t, err)
	require.True(t, compactWorth(size, free), "size %d free %d", size, free)
	st, err := os.Stat(path)
	require.NoError(t, err)
	f.compactIfWorth()
	st2, err := os.Stat(path)
	require.NoError(t, err)
	require.Less(t, st2.Size(), st.Size()/2)
	_, free, err = a.space()
	require.NoError(t, err)
	require.False(t, compactWorth(size, free), "nothing free after a compaction")
	f.compactIfWorth() // nothing freed since: no compaction, no error
	f.close()
	require.NoError(t, a.close())

	require.NoError(t, os.WriteFile(path+compactSuffix, []byte("half a copy"), 0o600))
	a, err = openArchive(path, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer a.close()
	require.NoFileExists(t, path+compactSuffix)
	got, err := a.read("w", 2951, 100)
	require.NoError(t, err)
	require.Len(t, got, 50)
}

// Readers and the writer wait for a compaction's swap rather than use a
// closed file.
func TestCompactionWhileReadingAndWriting(t *testing.T) {
	a := openTestArchive(t)
	bigEvents(t, a, "w", 2000)
	_, err := a.prune(0, 100, 10000)
	require.NoError(t, err)
	stop := make(chan struct{})
	errs := make(chan error, 2)
	go func() {
		for {
			select {
			case <-stop:
				errs <- nil
				return
			default:
			}
			if got, err := a.read("w", 1950, 10); err != nil || len(got) != 10 {
				errs <- fmt.Errorf("read: %d events, %v", len(got), err)
				return
			}
		}
	}()
	go func() {
		for seq := uint64(2001); ; seq++ {
			select {
			case <-stop:
				errs <- nil
				return
			default:
			}
			if err := a.write(evs("w", seq, seq)); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 3 {
		_, _, err := a.compact()
		require.NoError(t, err)
	}
	close(stop)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	holes, err := a.holes("w", 1900, 2000)
	require.NoError(t, err)
	require.Empty(t, holes)
}
