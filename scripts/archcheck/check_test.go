package main

import (
	"slices"
	"strings"
	"testing"
)

// graph builds a synthetic module example.com/m from lines such as
// "cmd: api x.io/db +tagged": the package, then its imports. Paths without
// a domain are the module's packages, the others external ones; a "+"
// marks an import of a file under a build tag only (counted for
// may-import, not linked). The module's packages are those named before a
// colon that have no domain; Deps is the closure of the linked imports.
func graph(lines ...string) *Graph {
	full := func(s string) string {
		if isStd(s) && !strings.HasPrefix(s, "std:") {
			return mod + "/" + s
		}
		return strings.TrimPrefix(s, "std:")
	}
	g := &Graph{Module: mod, Edges: map[string][]string{}}
	for _, l := range lines {
		name, imps, _ := strings.Cut(l, ":")
		p := &Package{Path: full(name), Imports: map[string]string{}}
		for _, imp := range strings.Fields(imps) {
			tagged := strings.HasPrefix(imp, "+")
			imp = full(strings.TrimPrefix(imp, "+"))
			p.Imports[imp] = name + "/" + "f.go:3"
			if !tagged {
				g.Edges[p.Path] = append(g.Edges[p.Path], imp)
			}
		}
		if strings.HasPrefix(p.Path, mod) {
			g.Packages = append(g.Packages, p)
		}
	}
	for _, p := range g.Packages {
		order, _ := walk(g, p.Path)
		p.Deps = order
	}
	return g
}

func TestCheckOnSyntheticGraphs(t *testing.T) {
	for _, c := range []struct {
		name  string
		rules string
		graph []string
		want  []string
		notes []string
	}{{
		name:  "allowed imports pass",
		rules: "may-import a b c/...\nmay-import b\nmay-import c/...",
		graph: []string{"a: b c/d std:fmt x.io/y", "b:", "c/d:"},
	}, {
		name:  "an import no row allows is named with its rule and file",
		rules: "may-import client wire\nmay-import wire\nmay-import fsm",
		graph: []string{"client: wire fsm", "wire:", "fsm:"},
		want:  []string{"client imports fsm: not allowed by rule at r.txt:1 (client/f.go:3)"},
	}, {
		name:  "a row with nothing allowed refuses every module import",
		rules: "may-import a\nmay-import b",
		graph: []string{"a: b std:os", "b:"},
		want:  []string{"a imports b: not allowed by rule at r.txt:1 (a/f.go:3)"},
	}, {
		name:  "the most specific row governs",
		rules: "may-import a/... b\nmay-import a/x c\nmay-import b\nmay-import c",
		graph: []string{"a/y: b", "a/x: b c", "b:", "c:"},
		want:  []string{"a/x imports b: not allowed by rule at r.txt:2 (a/x/f.go:3)"},
	}, {
		name:  "an import under a build tag counts",
		rules: "may-import a\nmay-import b",
		graph: []string{"a: +b", "b:"},
		want:  []string{"a imports b: not allowed by rule at r.txt:1 (a/f.go:3)"},
	}, {
		name:  "a package without a may-import row fails and says what to do",
		rules: "may-import a",
		graph: []string{"a:", "newpkg:"},
		want:  []string{"newpkg: no may-import row matches it: add one to r.txt"},
	}, {
		name:  "an internal package needs an only-imported-by row",
		rules: "may-import ./...\nonly-imported-by internal/ok a",
		graph: []string{"internal/h:", "internal/ok:"},
		want:  []string{"internal/h: no only-imported-by row says who may use it: add one to r.txt"},
	}, {
		name: "only-imported-by refuses other importers, and with none listed every importer",
		rules: "may-import ./... ./...\nonly-imported-by internal/h cmd/...\n" +
			"only-imported-by internal/t",
		graph: []string{"cmd/x: internal/h internal/t", "api: internal/h", "internal/h:", "internal/t:"},
		want: []string{
			"api imports internal/h: not allowed by rule at r.txt:2 (api/f.go:3)",
			"cmd/x imports internal/t: not allowed by rule at r.txt:3 (cmd/x/f.go:3)",
		},
	}, {
		name:  "may-import is checked before only-imported-by, one finding per import",
		rules: "may-import a\nmay-import internal/h\nonly-imported-by internal/h b",
		graph: []string{"a: internal/h", "internal/h:"},
		want:  []string{"a imports internal/h: not allowed by rule at r.txt:1 (a/f.go:3)"},
	}, {
		name:  "external imports are checked only where a row says",
		rules: "may-import ./...\nmay-import-external wire std x.io/codec/...\nmay-import-external a/... std",
		graph: []string{"wire: std:bytes x.io/codec/v5 x.io/jwt", "a/b: std:os", "free: x.io/jwt"},
		want:  []string{"wire imports x.io/jwt: not allowed by rule at r.txt:2 (wire/f.go:3)"},
	}, {
		name:  "must-not-link names the nearest linked package per pattern and the chain to it",
		rules: "may-import ./... ./...\nmust-not-link ctl store x.io/raft/... x.io/bolt",
		graph: []string{
			"ctl: client api", "client: std:net", "api: store", "store: x.io/raft x.io/raft-boltdb",
			"x.io/raft-boltdb: x.io/bolt", "x.io/raft: x.io/raft/sub",
		},
		want: []string{
			"ctl links store (via api): not allowed by rule at r.txt:2",
			"ctl links x.io/raft (via api, store): not allowed by rule at r.txt:2",
			"ctl links x.io/bolt (via api, store, x.io/raft-boltdb): not allowed by rule at r.txt:2",
		},
	}, {
		name:  "must-not-link of a direct import has no chain, and every row about a package applies",
		rules: "may-import ./... ./...\nmust-not-link ctl/... store\nmust-not-link ctl x.io/db",
		graph: []string{"ctl: store x.io/db", "store:"},
		want: []string{
			"ctl links store: not allowed by rule at r.txt:2",
			"ctl links x.io/db: not allowed by rule at r.txt:3",
		},
	}, {
		name:  "an import under a build tag is not linked",
		rules: "may-import ./... ./...\nmust-not-link a b",
		graph: []string{"a: +b", "b:"},
	}, {
		name:  "a row about no package fails unless a planned row names it",
		rules: "planned shard/...\nmay-import a\nmay-import shard/x a\nmay-import gone\nmust-not-link gone/... a\nmay-import-external shard/y std",
		graph: []string{"a:"},
		want: []string{
			"r.txt:4: may-import gone matches no package: remove the row, or name the package in a planned row if it is not written yet",
			"r.txt:5: must-not-link gone/... matches no package: remove the row, or name the package in a planned row if it is not written yet",
		},
	}, {
		name:  "a planned row about a package that exists is only a note",
		rules: "planned wire a/...\nmay-import wire\nmay-import a/...",
		graph: []string{"wire:"},
		notes: []string{"r.txt:1: wire exists now: take it out of the planned row"},
	}, {
		name:  "a planned package does not cover a wider row",
		rules: "planned a/b\nmay-import a/...",
		graph: []string{"c:"},
		want: []string{
			"c: no may-import row matches it: add one to r.txt",
			"r.txt:2: may-import a/... matches no package: remove the row, or name the package in a planned row if it is not written yet",
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			rs, err := parseRules("r.txt", mod, []byte(c.rules))
			if err != nil {
				t.Fatal(err)
			}
			got, notes := Check(rs, graph(c.graph...))
			if !slices.Equal(got, c.want) {
				t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if !slices.Equal(notes, c.notes) {
				t.Errorf("notes: %q, want %q", notes, c.notes)
			}
		})
	}
}

func TestALinkTheImportsDoNotExplainIsStillReported(t *testing.T) {
	rs, err := parseRules("r.txt", mod, []byte("may-import ./...\nmust-not-link a x.io/db"))
	if err != nil {
		t.Fatal(err)
	}
	g := graph("a:")
	g.Packages[0].Deps = []string{"x.io/db"}
	got, _ := Check(rs, g)
	if want := []string{"a links x.io/db: not allowed by rule at r.txt:2"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestChecksDoNotDependOnTheOrderOfPackages(t *testing.T) {
	rs, err := parseRules("r.txt", mod, []byte("may-import a\nmay-import b\nmay-import c"))
	if err != nil {
		t.Fatal(err)
	}
	g := graph("c: a", "b: a", "a:")
	got, _ := Check(rs, g)
	slices.Reverse(g.Packages)
	again, _ := Check(rs, g)
	want := []string{
		"b imports a: not allowed by rule at r.txt:2 (b/f.go:3)",
		"c imports a: not allowed by rule at r.txt:3 (c/f.go:3)",
	}
	if !slices.Equal(got, want) || !slices.Equal(again, want) {
		t.Errorf("got %q then %q, want %q", got, again, want)
	}
}
