package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Package is one package of the module as the rules see it.
type Package struct {
	Path string
	// Imports are the direct imports of its non-test .go files under every
	// build tag, each with where it first appears ("client/ws.go:12").
	Imports map[string]string
	// Deps is what it links in the default build (go list -deps).
	Deps []string
}

// Graph is the module's packages and, to explain a link, every package's
// direct imports in the default build.
type Graph struct {
	Module   string
	Packages []*Package
	Edges    map[string][]string
}

// Check evaluates the rules on g. It returns the violations, one message
// each, and notes that fail nothing (planned packages that exist now).
func Check(rs *Rules, g *Graph) (violations, notes []string) {
	pkgs := slices.Clone(g.Packages)
	slices.SortFunc(pkgs, func(a, b *Package) int { return strings.Compare(a.Path, b.Path) })
	for _, p := range pkgs {
		violations = append(violations, checkImports(rs, p)...)
		violations = append(violations, checkLinks(rs, g, p)...)
	}
	v, n := checkRows(rs, pkgs)
	return append(violations, v...), n
}

// checkImports applies the may-import, may-import-external and
// only-imported-by rows to p's direct imports.
func checkImports(rs *Rules, p *Package) []string {
	var out []string
	name := rs.rel(p.Path)
	may := rs.find(mayImport, p.Path)
	if may == nil {
		out = append(out, fmt.Sprintf("%s: no may-import row matches it: add one to %s", name, rs.file))
	}
	if strings.HasPrefix(p.Path, rs.module+"/internal/") && rs.find(onlyImportedBy, p.Path) == nil {
		out = append(out, fmt.Sprintf("%s: no only-imported-by row says who may use it: add one to %s", name, rs.file))
	}
	ext := rs.find(mayImportExternal, p.Path)
	for _, imp := range slices.Sorted(maps.Keys(p.Imports)) {
		var broken *rule
		switch {
		case !inModule(imp, rs.module):
			if ext != nil && !ext.allows(imp) {
				broken = ext
			}
		case may != nil && !may.allows(imp):
			broken = may
		default:
			if only := rs.find(onlyImportedBy, imp); only != nil && !only.allows(p.Path) {
				broken = only
			}
		}
		if broken != nil {
			out = append(out, fmt.Sprintf("%s imports %s: not allowed by rule at %s:%d (%s)", name, rs.rel(imp), rs.file, broken.line, p.Imports[imp]))
		}
	}
	return out
}

// checkLinks applies the must-not-link rows to p's closure: for each
// forbidden pattern, the linked package nearest to p that it matches, with
// the imports that lead there.
func checkLinks(rs *Rules, g *Graph, p *Package) []string {
	var out []string
	var order []string         // breadth first from p
	var from map[string]string // each package's importer on a shortest path
	deps := map[string]bool{}
	for _, d := range p.Deps {
		deps[d] = true
	}
	for _, r := range rs.rows {
		if r.kind != mustNotLink || !r.subject.match(p.Path) {
			continue
		}
		if order == nil {
			order, from = walk(g, p.Path)
		}
		for _, f := range r.list {
			// The walk reaches every dep; the deps after it only guard
			// against a graph go list did not fully describe.
			for _, d := range slices.Concat(order, p.Deps) {
				if !deps[d] || !f.match(d) {
					continue
				}
				via := ""
				if chain := path(from, p.Path, d); len(chain) > 0 {
					for i := range chain {
						chain[i] = rs.rel(chain[i])
					}
					via = " (via " + strings.Join(chain, ", ") + ")"
				}
				out = append(out, fmt.Sprintf("%s links %s%s: not allowed by rule at %s:%d", rs.rel(p.Path), rs.rel(d), via, rs.file, r.line))
				break
			}
		}
	}
	return out
}

// walk visits the default-build import graph breadth first from root
// (imports in sorted order, so the chains are stable) and returns the
// packages in visiting order and each one's importer.
func walk(g *Graph, root string) ([]string, map[string]string) {
	from := map[string]string{root: ""}
	queue := []string{root}
	for i := 0; i < len(queue); i++ {
		imps := slices.Clone(g.Edges[queue[i]])
		slices.Sort(imps)
		for _, imp := range imps {
			if _, seen := from[imp]; !seen {
				from[imp] = queue[i]
				queue = append(queue, imp)
			}
		}
	}
	return queue[1:], from
}

// path returns the packages between root and to on the walk's tree.
func path(from map[string]string, root, to string) []string {
	var chain []string
	for p := from[to]; p != root && p != ""; p = from[p] {
		chain = append(chain, p)
	}
	slices.Reverse(chain)
	return chain
}

// checkRows finds rows about packages that do not exist: a violation
// unless a planned row names them; and planned rows about packages that
// exist now, a note.
func checkRows(rs *Rules, pkgs []*Package) (violations, notes []string) {
	matchesAny := func(p pattern) bool {
		return slices.ContainsFunc(pkgs, func(q *Package) bool { return p.match(q.Path) })
	}
	var plans []pattern
	for _, r := range rs.rows {
		if r.kind != planned {
			continue
		}
		plans = append(plans, r.list...)
		for _, p := range r.list {
			if matchesAny(p) {
				notes = append(notes, fmt.Sprintf("%s:%d: %s exists now: take it out of the planned row", rs.file, r.line, rs.patternString(p)))
			}
		}
	}
	for _, r := range rs.rows {
		if r.kind == planned || matchesAny(r.subject) {
			continue
		}
		if !slices.ContainsFunc(plans, func(p pattern) bool { return p.covers(r.subject) }) {
			violations = append(violations, fmt.Sprintf("%s:%d: %s %s matches no package: remove the row, or name the package in a planned row if it is not written yet",
				rs.file, r.line, r.kind, rs.patternString(r.subject)))
		}
	}
	return violations, notes
}
