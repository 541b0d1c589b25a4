package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyModule copies testdata (the module example.com/tiny and the external
// module it links) into a temporary directory and returns the tiny
// module's root, so a test can break it.
func tinyModule(t *testing.T) string {
	t.Helper()
	t.Setenv("GOWORK", "off")
	dst := t.TempDir()
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata", path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dst, "tiny")
}

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// check runs the command on the tiny module at dir.
func check(t *testing.T, dir string, extra ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(append([]string{"-dir", dir, "-rules", "rules.txt", "-doc", "ARCH.md"}, extra...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTheTinyModuleFollowsItsRules(t *testing.T) {
	code, out, errOut := check(t, tinyModule(t))
	if code != 0 || out != "archcheck: 6 packages follow rules.txt\n" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestABrokenImportThatCompilesFailsNamingIt(t *testing.T) {
	dir := tinyModule(t)
	// client may import wire only; importing fsm compiles.
	writeFile(t, dir, "client/apply.go", `package client

import (
	"example.com/tiny/fsm"
	"example.com/tiny/wire"
)

// Apply applies an event locally.
func Apply(e wire.Event) uint64 { return fsm.Apply(e) }
`)
	code, out, errOut := check(t, dir)
	want := "client imports fsm: not allowed by rule at rules.txt:7 (client/apply.go:4)\n"
	if code != 1 || out != want || !strings.Contains(errOut, "1 finding(s)") {
		t.Fatalf("exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, out, want, errOut)
	}
}

func TestATransitiveLinkFailsWithTheChain(t *testing.T) {
	dir := tinyModule(t)
	// ctl imports api only for one helper, and so links the store and db.
	writeFile(t, dir, "rules.txt", strings.Replace(readFile(t, dir, "rules.txt"), "cmd/ctl    client wire", "cmd/ctl    client wire api", 1))
	check(t, dir, "-fix-doc")
	writeFile(t, dir, "cmd/ctl/serve.go", `package main

import (
	"example.com/tiny/api"
	"example.com/tiny/wire"
)

var _, _ = api.Handle(wire.Event{})
`)
	code, out, _ := check(t, dir)
	want := "cmd/ctl links store (via api): not allowed by rule at rules.txt:11\n" +
		"cmd/ctl links example.com/ext/db (via api, store): not allowed by rule at rules.txt:11\n"
	if code != 1 || out != want {
		t.Fatalf("exit %d\nstdout:\n%s\nwant:\n%s", code, out, want)
	}
}

func TestTheDocsCopyOfTheRulesMustNotDrift(t *testing.T) {
	dir := tinyModule(t)
	writeFile(t, dir, "rules.txt", strings.Replace(readFile(t, dir, "rules.txt"), "may-import          api        store wire", "may-import          api        store wire fsm", 1))
	code, out, _ := check(t, dir)
	if code != 1 || !strings.HasPrefix(out, "ARCH.md:11 differs from rules.txt:6: ") {
		t.Fatalf("exit %d\nstdout:\n%s", code, out)
	}
	if code, out, _ := check(t, dir, "-fix-doc"); code != 0 {
		t.Fatalf("-fix-doc: exit %d\n%s", code, out)
	}
	if !strings.Contains(readFile(t, dir, "ARCH.md"), "store wire fsm\n") {
		t.Error("-fix-doc did not copy the rules")
	}
}

func TestAnImportUnderABuildTagCounts(t *testing.T) {
	dir := tinyModule(t)
	writeFile(t, dir, "client/debug.go", "//go:build debug\n\npackage client\n\nimport _ \"example.com/tiny/store\"\n")
	writeFile(t, dir, "client/debug_test.go", "package client\n\nimport _ \"example.com/tiny/api\"\n")
	code, out, _ := check(t, dir)
	if code != 1 || out != "client imports store: not allowed by rule at rules.txt:7 (client/debug.go:5)\n" {
		t.Fatalf("exit %d\nstdout:\n%s", code, out)
	}
	writeFile(t, dir, "client/debug.go", "//go:build debug\n\npackage client\n\nimport (\n")
	code, _, errOut := check(t, dir)
	if code != 1 || !strings.Contains(errOut, "debug.go") {
		t.Fatalf("a file that does not parse: exit %d\nstderr:\n%s", code, errOut)
	}
}

func TestANewPackageWithoutARuleFails(t *testing.T) {
	dir := tinyModule(t)
	writeFile(t, dir, "metrics/metrics.go", "package metrics\n")
	code, out, _ := check(t, dir)
	if code != 1 || out != "metrics: no may-import row matches it: add one to rules.txt\n" {
		t.Fatalf("exit %d\nstdout:\n%s", code, out)
	}
}

func TestAnExternalImportOutsideItsRowFails(t *testing.T) {
	dir := tinyModule(t)
	writeFile(t, dir, "fsm/disk.go", "package fsm\n\nimport _ \"example.com/ext/db\"\n")
	code, out, _ := check(t, dir)
	if code != 1 || out != "fsm imports example.com/ext/db: not allowed by rule at rules.txt:10 (fsm/disk.go:3)\n" {
		t.Fatalf("exit %d\nstdout:\n%s", code, out)
	}
}

func TestFailuresToLoadOrReadAreReported(t *testing.T) {
	dir := tinyModule(t)
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no rules file", []string{"-rules", "missing.txt"}, 1, "missing.txt"},
		{"no doc", []string{"-doc", "missing.md"}, 1, "missing.md"},
		{"unknown flag", []string{"-bogus"}, 2, "flag provided but not defined"},
		{"arguments", []string{"./..."}, 2, "unexpected arguments"},
		{"no go command", []string{"-go", filepath.Join(dir, "no-go")}, 1, "go list in"},
		{"doc without a block", []string{"-doc", "rules.txt", "-fix-doc"}, 1, "no fenced block tagged import-rules"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := check(t, dir, c.args...)
			if code != c.code || !strings.Contains(errOut, c.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, c.code, c.stderr)
			}
		})
	}
	t.Run("a bad rules file", func(t *testing.T) {
		dir := tinyModule(t)
		writeFile(t, dir, "rules.txt", "may-imports fsm\n")
		code, _, errOut := check(t, dir, "-doc", "")
		if code != 1 || !strings.Contains(errOut, "rules.txt:1: unknown row \"may-imports\"") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("a package that does not compile its imports", func(t *testing.T) {
		dir := tinyModule(t)
		writeFile(t, dir, "client/bad.go", "package client\n\nimport \"example.com/tiny/nothere\"\n")
		code, _, errOut := check(t, dir)
		if code != 1 || !strings.Contains(errOut, "nothere") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
