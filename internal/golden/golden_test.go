package golden

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB that records a Fatal instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatal(args ...any)         { r.failed = "fatal"; panic(r) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = f; panic(r) }

// run calls f with a recorder and returns the format of its Fatalf, if any.
func run(t *testing.T, f func(tb testing.TB)) (failed string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		failed = r.failed
	}()
	f(r)
	return ""
}

func TestGoldenFilesAreWrittenWithUpdateAndComparedWithout(t *testing.T) {
	old := Dir
	Dir = filepath.Join(t.TempDir(), "golden")
	t.Cleanup(func() { Dir = old; *update = false })

	require.Contains(t, run(t, func(tb testing.TB) { Text(tb, "a.txt", []byte("x")) }), "run with -update")
	require.Contains(t, run(t, func(tb testing.TB) { Read(tb, "a.txt") }), "run with -update")

	*update = true
	require.True(t, Updating())
	require.Empty(t, run(t, func(tb testing.TB) { Text(tb, "a.txt", []byte("one\ntwo\n")) }))
	require.Empty(t, run(t, func(tb testing.TB) { Binary(tb, "b.bin", []byte{1, 2, 3}) }))
	*update = false

	require.Empty(t, run(t, func(tb testing.TB) { Text(tb, "a.txt", []byte("one\ntwo\n")) }))
	require.Empty(t, run(t, func(tb testing.TB) { Binary(tb, "b.bin", []byte{1, 2, 3}) }))
	require.Equal(t, []byte{1, 2, 3}, Read(t, "b.bin"))
	require.Contains(t, run(t, func(tb testing.TB) { Text(tb, "a.txt", []byte("one\nthree\n")) }), "bytes differ")
	require.Contains(t, run(t, func(tb testing.TB) { Binary(tb, "b.bin", []byte{1, 2, 4}) }), "bytes differ")

	require.NoError(t, os.WriteFile(filepath.Join(Dir, "b.bin.hex"), []byte("stale"), 0o644))
	require.Contains(t, run(t, func(tb testing.TB) { Binary(tb, "b.bin", []byte{1, 2, 3}) }), "not the hex dump")
	require.NoError(t, os.Remove(filepath.Join(Dir, "b.bin.hex")))
	require.Contains(t, run(t, func(tb testing.TB) { Binary(tb, "b.bin", []byte{1, 2, 3}) }), ".hex")

	// A directory where the file should go cannot be written.
	require.NoError(t, os.MkdirAll(filepath.Join(Dir, "d.txt"), 0o755))
	*update = true
	require.Equal(t, "fatal", run(t, func(tb testing.TB) { Text(tb, "d.txt", []byte("x")) }))
	*update = false
}

func TestDiffShowsTheFirstDifferingLineWithContext(t *testing.T) {
	d := Diff([]byte("a\nb\nc\nd\n"), []byte("a\nb\nX\nd\n"), false)
	require.Equal(t, "first difference at line 3:\n  a\n  b\n- c\n- d\n- \n+ X\n+ d\n+ \n", d)
	require.Contains(t, Diff([]byte{0}, []byte{1}, true), "- 00000000  00")
}
