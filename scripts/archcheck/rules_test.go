package main

import (
	"strings"
	"testing"
)

const mod = "example.com/m"

func TestParsePattern(t *testing.T) {
	for in, want := range map[string]pattern{
		"fsm":                           {path: mod + "/fsm"},
		"./fsm":                         {path: mod + "/fsm"},
		"fsm/...":                       {path: mod + "/fsm", prefix: true},
		"./...":                         {path: mod, prefix: true},
		"...":                           {path: mod, prefix: true},
		mod + "/api":                    {path: mod + "/api"},
		mod:                             {path: mod},
		"github.com/hashicorp/raft":     {path: "github.com/hashicorp/raft"},
		"go.etcd.io/bbolt/...":          {path: "go.etcd.io/bbolt", prefix: true},
		"std":                           {std: true},
		"cmd/gsd":                       {path: mod + "/cmd/gsd"},
		"github.com/hashicorp/raft/...": {path: "github.com/hashicorp/raft", prefix: true},
	} {
		got, err := parsePattern(in, mod)
		if err != nil || got != want {
			t.Errorf("parsePattern(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "./", "fsm/", "a//b", "a/.../b", "/abs", ".", "..../x"} {
		if p, err := parsePattern(bad, mod); err == nil {
			t.Errorf("parsePattern(%q) = %+v, want an error", bad, p)
		}
	}
}

func TestPatternMatchesItsPackageAndTreeOnly(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"fsm", mod + "/fsm", true},
		{"fsm", mod + "/fsm/crdt", false},
		{"fsm/...", mod + "/fsm", true},
		{"fsm/...", mod + "/fsm/crdt", true},
		{"fsm/...", mod + "/fsmx", false},
		{"./...", mod + "/any/thing", true},
		{"std", "net/http", true},
		{"std", "C", true},
		{"std", "github.com/x/y", false},
		{"github.com/hashicorp/raft/...", "github.com/hashicorp/raft-boltdb/v2", false},
		{"github.com/hashicorp/...", "github.com/hashicorp/raft-boltdb/v2", true},
	} {
		p, err := parsePattern(c.pattern, mod)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.match(c.path); got != c.want {
			t.Errorf("%s matches %s = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

func TestParseRulesReportsEveryBadRowWithItsLine(t *testing.T) {
	for _, c := range []struct{ rows, want string }{
		{"import fsm", "r.txt:1: unknown row \"import\""},
		{"may-import", "r.txt:1: may-import needs a package pattern"},
		{"may-import github.com/x/y", "r.txt:1: may-import \"github.com/x/y\": the row's subject must be packages of the module"},
		{"may-import std", "the row's subject must be packages of the module"},
		{"may-import a//b", "the row's subject must be packages of the module"},
		{"may-import a\n\nmay-import ./a", "r.txt:3: may-import ./a: a second row for the same packages (the first is at line 1)"},
		{"must-not-link a", "r.txt:1: must-not-link needs at least one pattern"},
		{"planned", "r.txt:1: planned needs at least one pattern"},
		{"may-import-external a", "r.txt:1: may-import-external needs at least one pattern"},
		{"may-import a github.com/x/y", "r.txt:1: pattern \"github.com/x/y\": may-import lists packages of the module"},
		{"may-import a std", "r.txt:1: pattern \"std\": std is only for may-import-external"},
		{"must-not-link a std", "std is only for may-import-external"},
		{"may-import-external a b", "r.txt:1: pattern \"b\": may-import-external lists packages outside the module (or std)"},
		{"only-imported-by a github.com/x/y", "only-imported-by lists packages of the module"},
		{"planned github.com/x/y", "planned lists packages of the module"},
		{"may-import a b/.../c", "r.txt:1: pattern \"b/.../c\": want a package path"},
	} {
		_, err := parseRules("r.txt", mod, []byte(c.rows))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rows %q: error %v, want it to contain %q", c.rows, err, c.want)
		}
	}
	// Every bad row is reported, not only the first.
	_, err := parseRules("r.txt", mod, []byte("nope\nmay-import a\nmay-import a\nmust-not-link b\n"))
	for _, want := range []string{"r.txt:1:", "r.txt:3:", "r.txt:4:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestParseRulesSkipsCommentsAndKeepsLines(t *testing.T) {
	rs, err := parseRules("r.txt", mod, []byte("# header\n\nmay-import a b c/... # trailing\n  must-not-link a x.io/y/...\nmust-not-link a d\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rs.rows))
	}
	r := rs.rows[0]
	if r.kind != mayImport || r.line != 3 || r.subject != (pattern{path: mod + "/a"}) || len(r.list) != 2 {
		t.Errorf("first row = %+v", r)
	}
	if !r.allows(mod+"/c/d") || r.allows(mod+"/cc") || r.allows(mod+"/a") {
		t.Error("the row allows the wrong packages")
	}
	if rs.rows[1].line != 4 || rs.rows[2].line != 5 {
		t.Error("must-not-link rows may repeat a subject and keep their lines")
	}
}

func TestTheMostSpecificRowGoverns(t *testing.T) {
	rs, err := parseRules("r.txt", mod, []byte("may-import ./...\nmay-import a/...\nmay-import a\nmay-import a/b/...\n"))
	if err != nil {
		t.Fatal(err)
	}
	for pkg, line := range map[string]int{"x": 1, "a": 3, "a/c": 2, "a/b": 4, "a/b/c": 4} {
		if r := rs.find(mayImport, mod+"/"+pkg); r == nil || r.line != line {
			t.Errorf("%s is governed by %+v, want the row at line %d", pkg, r, line)
		}
	}
	if r := rs.find(mustNotLink, mod+"/a"); r != nil {
		t.Errorf("found %+v for a kind without rows", r)
	}
}

func TestNamesForMessages(t *testing.T) {
	rs := &Rules{module: mod}
	for p, want := range map[pattern]string{
		{path: mod, prefix: true}:        "./...",
		{path: mod}:                      ".",
		{path: mod + "/a", prefix: true}: "a/...",
		{path: "x.io/y"}:                 "x.io/y",
		{std: true}:                      "std",
	} {
		if got := rs.patternString(p); got != want {
			t.Errorf("patternString(%+v) = %q, want %q", p, got, want)
		}
	}
	if mustNotLink.String() != "must-not-link" {
		t.Error(mustNotLink.String())
	}
}
