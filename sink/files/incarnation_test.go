package files

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// lines returns, per incarnation of world, the seqs of its finished
// files' lines in name order, after checking each line's incarnation
// and world against its file's name.
func lines(t *testing.T, dir, world string) map[int64][]uint64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		if n, ok := ParseName(e.Name()); ok && n.World == world {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	out := make(map[int64][]uint64)
	for _, name := range names {
		n, _ := ParseName(name)
		f, err := os.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		gz, err := gzip.NewReader(f)
		require.NoError(t, err, name)
		sc := bufio.NewScanner(gz)
		for sc.Scan() {
			var rec struct {
				World       string `json:"world"`
				Seq         uint64 `json:"seq"`
				Incarnation *int64 `json:"incarnation"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), name)
			require.Equal(t, world, rec.World, name)
			require.NotNil(t, rec.Incarnation, "%s: every line names its incarnation", name)
			require.Equal(t, n.Incarnation, *rec.Incarnation, name)
			out[n.Incarnation] = append(out[n.Incarnation], rec.Seq)
		}
		require.NoError(t, sc.Err(), name)
		require.NoError(t, f.Close())
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestFilesStartARecreatedWorldFromSeqOne(t *testing.T) {
	src := newFakeSource()
	src.Add("a", 10, 1000)
	inc1 := src.Incarnation("a")
	dir := t.TempDir()
	cfg := testConfig(dir)

	// Re-created while the export follows it (behind the old position),
	// then, stopped, re-created again ahead of it.
	s := startSink(t, cfg, src)
	require.Eventually(t, at(s.s, "a", 10), 20*time.Second, time.Millisecond)
	src.Recreate("a", 4, 2000)
	inc2 := src.Incarnation("a")
	require.Eventually(t, func() bool { return len(lines(t, dir, "a")[inc2]) == 4 }, 20*time.Second, time.Millisecond)
	s.stop()

	src.Recreate("a", 15, 3000)
	inc3 := src.Incarnation("a")
	s = startSink(t, cfg, src)
	require.Eventually(t, func() bool { return len(lines(t, dir, "a")[inc3]) == 15 }, 20*time.Second, time.Millisecond)
	require.Eventually(t, at(s.s, "a", 15), 20*time.Second, time.Millisecond)
	s.stop()

	require.Equal(t, map[int64][]uint64{inc1: seqRange(1, 10), inc2: seqRange(1, 4), inc3: seqRange(1, 15)}, lines(t, dir, "a"),
		"each incarnation's events once, none skipped")
}

func TestFilesAdoptTheIncarnationForFilesNamedWithoutOne(t *testing.T) {
	src := newFakeSource()
	src.Add("a", 8, 1000)
	inc := src.Incarnation("a")
	dir := t.TempDir()
	// A finished file an earlier gsd wrote: events 1..5, no incarnation.
	legacy := filepath.Join(dir, FileName("a", 1, 5))
	f, err := os.Create(legacy)
	require.NoError(t, err)
	gz := gzip.NewWriter(f)
	for _, ev := range src.Events("a")[:5] {
		b, err := json.Marshal(ev.Wire())
		require.NoError(t, err)
		_, err = gz.Write(append(b, '\n'))
		require.NoError(t, err)
	}
	require.NoError(t, gz.Close())
	require.NoError(t, f.Close())

	s := startSink(t, testConfig(dir), src)
	require.Eventually(t, at(s.s, "a", 8), 20*time.Second, time.Millisecond)
	s.stop()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []Name
	for _, e := range ents {
		n, ok := ParseName(e.Name())
		require.True(t, ok, e.Name())
		got = append(got, n)
	}
	// The earlier file stays as it was; the rest, in one file or more
	// (how the sink's reads fell decides), carries the incarnation and
	// follows on from it.
	require.Equal(t, Name{World: "a", First: 1, Last: 5}, got[0])
	next := uint64(6)
	for _, n := range got[1:] {
		require.Equal(t, Name{World: "a", Incarnation: inc, First: next, Last: n.Last}, n)
		next = n.Last + 1
	}
	require.Equal(t, uint64(9), next, "events 6 to 8 are in the new files")
	requireExactlyOnce(t, dir, src, "a")
}

func TestNamesWithAnIncarnationRoundTripAndSortInSeqOrder(t *testing.T) {
	for _, n := range []Name{
		{World: "a", Incarnation: 1, First: 1, Last: 1},
		{World: "b/c.d", Incarnation: 1733000000000000000, First: 7, Last: 9},
		{World: "x-1", Incarnation: -5, First: 2, Last: 3},
		{World: "a", First: 4, Last: 4},
	} {
		got, ok := ParseName(n.String())
		require.True(t, ok, n.String())
		require.Equal(t, n, got)
	}
	for _, name := range []string{"a.0.1-2.ndjson.gz", "a.x.1-2.ndjson.gz", "a..1-2.ndjson.gz", "a.1.2.3-4.ndjson.gz"} {
		_, ok := ParseName(name)
		require.False(t, ok, name)
	}
	inc := int64(1733000000000000000)
	require.Less(t, Name{World: "a", Incarnation: inc, First: 9, Last: 9}.String(), Name{World: "a", Incarnation: inc, First: 10, Last: 12}.String())
}

func TestPositionsListTheIncarnationsNewestFirst(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []Name{
		{World: "a", Incarnation: 7, First: 1, Last: 3},
		{World: "a", First: 1, Last: 2},
		{World: "a", Incarnation: -1001, First: 1, Last: 9},
		{World: "a", Incarnation: 1796535100000000000, First: 1, Last: 4},
		{World: "a", Incarnation: -2001, First: 1, Last: 5},
		{World: "a", Incarnation: -2001, First: 6, Last: 8},
		{World: "a", Incarnation: 12, First: 1, Last: 1},
		{World: "b", Incarnation: 99, First: 1, Last: 1},
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n.String()), nil, 0o644))
	}
	got, err := positions(dir, "a")
	require.NoError(t, err)
	require.Equal(t, []feed.Position{
		{Incarnation: -2001, Seq: 8}, {Incarnation: -1001, Seq: 9}, // a world from before incarnations: the latest event 1 first
		{Incarnation: 1796535100000000000, Seq: 4}, {Incarnation: 12, Seq: 1}, {Incarnation: 7, Seq: 3},
		{Seq: 2},
	}, got)
}

// A cluster rebuilt from empty data dirs into the same export directory
// creates its worlds at the same indexes: its world is refused rather
// than exported after the old one's files.
func TestFilesOfAnotherWorldWithTheSameIncarnationAreRefused(t *testing.T) {
	src := newFakeSource()
	src.Add("a", 10, 1000)
	dir := t.TempDir()
	s := startSink(t, testConfig(dir), src)
	require.Eventually(t, at(s.s, "a", 10), 20*time.Second, time.Millisecond)
	s.stop()
	before := lines(t, dir, "a")

	other := newFakeSource()
	other.Add("a", 12, 5000)
	require.Equal(t, src.Incarnation("a"), other.Incarnation("a"))
	s = startSink(t, testConfig(dir), other)
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.s.m.failures.WithLabelValues(failFeed)) >= 2 }, 20*time.Second, time.Millisecond)
	s.stop()
	require.Equal(t, before, lines(t, dir, "a"), "nothing written for the other world")

	// The same world goes on.
	src.Add("a", 2, 1000)
	s = startSink(t, testConfig(dir), src)
	require.Eventually(t, at(s.s, "a", 12), 20*time.Second, time.Millisecond)
	s.stop()
	requireExactlyOnce(t, dir, src, "a")

	// A finished file it cannot read is not held against it.
	inc := src.Incarnation("a")
	require.NoError(t, os.WriteFile(filepath.Join(dir, Name{World: "a", Incarnation: inc, First: 13, Last: 13}.String()), []byte("torn"), 0o644))
	ev, _ := other.Event("a", 12)
	e := &export{s: s.s, world: "a"}
	require.ErrorIs(t, e.Verify(context.Background(), feed.Position{Incarnation: inc, Seq: 12}, ev), ErrIncarnation)
	ev13 := *ev
	ev13.Seq = 13
	require.NoError(t, e.Verify(context.Background(), feed.Position{Incarnation: inc, Seq: 13}, &ev13))
}

func TestFindRecordReportsAnUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	name := Name{World: "a", Incarnation: 3, First: 1, Last: 2}.String()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("torn"), 0o644))
	_, _, err := findRecord(dir, "a", 3, 2)
	require.Error(t, err)
	_, found, err := findRecord(dir, "a", 4, 2)
	require.NoError(t, err)
	require.False(t, found)
	_, _, err = findRecord(filepath.Join(dir, "missing"), "a", 3, 2)
	require.Error(t, err)
}
