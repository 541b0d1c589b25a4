// Package golden compares bytes that users and disks see with golden files
// under the calling package's testdata/golden, for tests only. The files
// were captured from the code before the issue-10 refactor; a test fails
// when today's bytes differ. `go test ./PKG -run TestGolden -update`
// rewrites them, only when a format change is intended.
package golden

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Dir is where the golden files live, relative to the test's package.
var Dir = filepath.Join("testdata", "golden")

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

// Text compares got with the golden file name.
func Text(t testing.TB, name string, got []byte) {
	t.Helper()
	compare(t, name, got, false)
}

// Binary compares got with the golden file name and keeps a hex dump beside
// it (name.hex) for review; the dump must match the file.
func Binary(t testing.TB, name string, got []byte) {
	t.Helper()
	compare(t, name, got, true)
}

// Read returns the bytes of the golden file name.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir, name))
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update to create it)", name, err)
	}
	return b
}

func compare(t testing.TB, name string, got []byte, binary bool) {
	t.Helper()
	path := filepath.Join(Dir, name)
	if *update {
		if err := write(path, got, binary); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update to create it)", path, err)
	}
	if binary {
		dump, err := os.ReadFile(path + ".hex")
		if err != nil {
			t.Fatalf("golden %s.hex: %v", path, err)
		}
		if string(dump) != hex.Dump(want) {
			t.Fatalf("golden %s.hex is not the hex dump of %s", path, path)
		}
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("bytes differ from golden %s (%d bytes, got %d):\n%s", path, len(want), len(got), Diff(want, got, binary))
	}
}

func write(path string, got []byte, binary bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, got, 0o644); err != nil {
		return err
	}
	if binary {
		return os.WriteFile(path+".hex", []byte(hex.Dump(got)), 0o644)
	}
	return nil
}

// Diff shows the first differing line (of a hex dump for binary data) with
// two lines of context, "-" for the golden file, "+" for got.
func Diff(want, got []byte, binary bool) string {
	split := func(b []byte) []string {
		if binary {
			return strings.Split(hex.Dump(b), "\n")
		}
		return strings.Split(string(b), "\n")
	}
	w, g := split(want), split(got)
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var sb strings.Builder
	for j := max(0, i-2); j < i; j++ {
		fmt.Fprintf(&sb, "  %s\n", w[j])
	}
	for j := i; j < min(len(w), i+3); j++ {
		fmt.Fprintf(&sb, "- %s\n", w[j])
	}
	for j := i; j < min(len(g), i+3); j++ {
		fmt.Fprintf(&sb, "+ %s\n", g[j])
	}
	return fmt.Sprintf("first difference at line %d:\n%s", i+1, sb.String())
}
