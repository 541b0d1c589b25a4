package fsm

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

// Golden files hold bytes that users and disks see, captured from the code
// before a refactor; the TestGolden tests compare today's bytes with them.
// Run `go test ./fsm -run TestGolden -update` to rewrite them, only when a
// format change is intended.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// requireGoldenText compares got with testdata/golden/name.
func requireGoldenText(t *testing.T, name string, got []byte) {
	t.Helper()
	requireGolden(t, name, got, false)
}

// requireGoldenBinary compares got with testdata/golden/name and keeps a hex
// dump beside it (name.hex) for review; the dump must match the file.
func requireGoldenBinary(t *testing.T, name string, got []byte) {
	t.Helper()
	requireGolden(t, name, got, true)
}

func requireGolden(t *testing.T, name string, got []byte, binary bool) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		if binary {
			if err := os.WriteFile(path+".hex", []byte(hex.Dump(got)), 0o644); err != nil {
				t.Fatal(err)
			}
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
		t.Fatalf("bytes differ from golden %s (%d bytes, got %d):\n%s", path, len(want), len(got), goldenDiff(want, got, binary))
	}
}

// goldenDiff shows the first differing line (of a hex dump for binary
// data) with two lines of context, "-" for the golden file, "+" for got.
func goldenDiff(want, got []byte, binary bool) string {
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

// readGolden returns the bytes of testdata/golden/name.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update to create it)", name, err)
	}
	return b
}
