package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mod = "github.com/gsd-dev/gsd"

func TestParsePattern(t *testing.T) {
	for in, want := range map[string]pattern{
		"fsm":               {path: mod + "/fsm"},
		"./fsm/...":         {path: mod + "/fsm", prefix: true},
		mod + "/fsm/crdt":   {path: mod + "/fsm/crdt"},
		mod + "/...":        {path: mod, prefix: true},
		"./...":             {path: mod, prefix: true},
		".":                 {path: mod},
		"example.com/x/...": {path: "example.com/x", prefix: true},
	} {
		if got := parsePattern(in, mod); got != want {
			t.Errorf("parsePattern(%q) = %+v, want %+v", in, got, want)
		}
	}
	p := parsePattern("fsm", mod)
	if !p.match(mod+"/fsm") || p.match(mod+"/fsm/crdt") {
		t.Error("exact pattern must match only its own package")
	}
	p = parsePattern("fsm/...", mod)
	if !p.match(mod+"/fsm") || !p.match(mod+"/fsm/crdt") || p.match(mod+"/fsmx") {
		t.Error("prefix pattern must match the package and its children only")
	}
}

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMergeAndGate(t *testing.T) {
	dir := t.TempDir()
	unit := write(t, dir, "unit.out", "mode: atomic\n"+
		mod+"/fsm/a.go:1.1,2.1 3 4\n"+
		mod+"/fsm/a.go:3.1,4.1 1 0\n"+
		mod+"/fsm/a.go:1.1,2.1 3 0\n"+ // duplicate from another test binary
		mod+"/scripts/x/x.go:1.1,2.1 9 0\n")
	integ := write(t, dir, "integ.out", "mode: set\n"+mod+"/fsm/a.go:3.1,4.1 1 1\n")
	gates := write(t, dir, "gates.txt", "# c\n"+mod+"/fsm 100\n")
	merged := filepath.Join(dir, "merged.out")

	var out strings.Builder
	if err := runMerge([]string{"-o", merged, unit, integ}, &out); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(merged)
	want := "mode: atomic\n" +
		mod + "/fsm/a.go:1.1,2.1 3 4\n" +
		mod + "/fsm/a.go:3.1,4.1 1 1\n" +
		mod + "/scripts/x/x.go:1.1,2.1 9 0\n"
	if string(data) != want {
		t.Fatalf("merged profile:\n%s\nwant:\n%s", data, want)
	}

	gate := func(profile string, extra ...string) error {
		out.Reset()
		return runGate(append([]string{"-module", mod, "-profile", profile, "-gates", gates}, extra...), &out)
	}
	if err := gate(unit); err == nil {
		t.Errorf("unit-only profile (fsm 75%%) passed the 100%% gate:\n%s", &out)
	}
	if err := gate(merged); err != nil {
		t.Errorf("merged profile failed: %v\n%s", err, &out)
	}
	if err := gate(unit + "," + integ); err != nil {
		t.Errorf("two profiles failed: %v\n%s", err, &out)
	}
	if err := gate(merged, "-min", "100"); err != nil {
		t.Errorf("scripts/ must be excluded from the overall figure: %v\n%s", err, &out)
	}
	if err := gate(merged, "-min", "100", "-exclude", ""); err == nil {
		t.Errorf("overall 4/13 passed -min 100 without exclusions:\n%s", &out)
	}
}

func TestFileGate(t *testing.T) {
	dir := t.TempDir()
	prof := write(t, dir, "p.out", "mode: set\n"+
		mod+"/api/a.go:1.1,2.1 3 1\n"+
		mod+"/api/b.go:1.1,2.1 1 0\n")
	var out strings.Builder
	gate := func(gates string) error {
		out.Reset()
		g := write(t, dir, "gates.txt", gates)
		return runGate([]string{"-module", mod, "-profile", prof, "-gates", g}, &out)
	}
	if err := gate("api/a.go 100\n"); err != nil {
		t.Errorf("a.go is fully covered: %v\n%s", err, &out)
	}
	if !strings.Contains(out.String(), "api/a.go") {
		t.Errorf("the table does not list the file gate:\n%s", &out)
	}
	if err := gate("api/b.go 100\n"); err == nil || !strings.Contains(out.String(), "file gate") {
		t.Errorf("b.go is uncovered but passed its file gate: %v\n%s", err, &out)
	}
	if err := gate("api/missing.go 50\n"); err == nil || !strings.Contains(out.String(), "matched no file") {
		t.Errorf("a gate naming no file passed: %v\n%s", err, &out)
	}
	if err := gate("api 70\n"); err != nil {
		t.Errorf("package api is at 75%%: %v\n%s", err, &out)
	}
}
