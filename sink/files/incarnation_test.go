package files

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

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
	dir := t.TempDir()
	cfg := testConfig(dir)

	// Re-created while the export follows it (behind the old position),
	// then, stopped, re-created again ahead of it.
	s := startSink(t, cfg, src)
	require.Eventually(t, at(s.s, "a", 10), 20*time.Second, time.Millisecond)
	src.Recreate("a", 4, 2000)
	require.Eventually(t, func() bool { return len(lines(t, dir, "a")[2001]) == 4 }, 20*time.Second, time.Millisecond)
	s.stop()

	src.Recreate("a", 15, 3000)
	s = startSink(t, cfg, src)
	require.Eventually(t, func() bool { return len(lines(t, dir, "a")[3001]) == 15 }, 20*time.Second, time.Millisecond)
	require.Eventually(t, at(s.s, "a", 15), 20*time.Second, time.Millisecond)
	s.stop()

	require.Equal(t, map[int64][]uint64{1001: seqRange(1, 10), 2001: seqRange(1, 4), 3001: seqRange(1, 15)}, lines(t, dir, "a"),
		"each incarnation's events once, none skipped")
}

func TestFilesAdoptTheIncarnationForFilesNamedWithoutOne(t *testing.T) {
	src := newFakeSource()
	src.Add("a", 8, 1000)
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
	require.Equal(t, []Name{{World: "a", First: 1, Last: 5}, {World: "a", Incarnation: 1001, First: 6, Last: 8}}, got)
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
