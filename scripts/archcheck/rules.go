package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// kind is a row's first word.
type kind int

const (
	mayImport         kind = iota // direct gsd imports of non-test files
	mayImportExternal             // direct imports from outside the module
	onlyImportedBy                // who may import a package
	mustNotLink                   // the transitive closure (go list -deps)
	planned                       // packages not written yet
)

// kindWords are the rows' first words, by kind.
var kindWords = [...]string{
	mayImport:         "may-import",
	mayImportExternal: "may-import-external",
	onlyImportedBy:    "only-imported-by",
	mustNotLink:       "must-not-link",
	planned:           "planned",
}

func (k kind) String() string { return kindWords[k] }

// kindOf returns the kind a row's first word names.
func kindOf(word string) (kind, bool) {
	for k, w := range kindWords {
		if w == word {
			return kind(k), true
		}
	}
	return 0, false
}

// pattern matches import paths: one package, a package and everything
// below it ("/..."), or the standard library (the word std).
type pattern struct {
	path   string // a full import path
	prefix bool
	std    bool
}

// isStd reports whether path is a standard-library import path (its first
// element has no dot, as for every module outside GOROOT; "C" included).
func isStd(path string) bool {
	return !strings.Contains(strings.SplitN(path, "/", 2)[0], ".")
}

func (p pattern) match(path string) bool {
	switch {
	case p.std:
		return isStd(path)
	case path == p.path:
		return true
	default:
		return p.prefix && strings.HasPrefix(path, p.path+"/")
	}
}

// specificity orders the patterns that match one package: a longer path is
// more specific, and a package itself more than its tree.
func (p pattern) specificity() int {
	s := 2 * len(p.path)
	if !p.prefix {
		s++
	}
	return s
}

// covers reports whether every package q matches also matches p.
func (p pattern) covers(q pattern) bool {
	return p.match(q.path) && (p.prefix || !q.prefix)
}

// parsePattern reads a pattern: a path relative to the module root ("fsm",
// "./cmd/gsd", "api/..."), "./..." or "..." for the whole module, a full
// import path ("github.com/hashicorp/raft/..."), or std.
func parsePattern(s, module string) (pattern, error) {
	if s == "std" {
		return pattern{std: true}, nil
	}
	if s == "..." || s == "./..." {
		return pattern{path: module, prefix: true}, nil
	}
	var p pattern
	if rest, ok := strings.CutSuffix(s, "/..."); ok {
		p.prefix = true
		s = rest
	}
	s = strings.TrimPrefix(s, "./")
	if s == "" || strings.Contains(s, "...") || strings.Contains(s, "//") || strings.HasSuffix(s, "/") || s == "." || strings.HasPrefix(s, "/") {
		return p, errors.New(`want a package path, optionally with "/..." at its end`)
	}
	switch {
	case s == module || strings.HasPrefix(s, module+"/"):
	case !isStd(s):
		// A full import path outside the module (it has a domain).
	default:
		s = module + "/" + s
	}
	p.path = s
	return p, nil
}

// rule is one row of the rules file.
type rule struct {
	kind    kind
	line    int
	subject pattern   // the packages the row is about (not for planned)
	list    []pattern // allowed, forbidden or planned patterns
}

// allows reports whether one of the row's patterns matches path.
func (r *rule) allows(path string) bool {
	for _, p := range r.list {
		if p.match(path) {
			return true
		}
	}
	return false
}

// Rules is a parsed rules file.
type Rules struct {
	file   string // the name messages give it
	module string
	rows   []*rule
}

// parseRules reads a rules file (see the package doc). Patterns relative to
// the module root are made full with module. Every malformed row is
// reported, each with its line.
func parseRules(file, module string, data []byte) (*Rules, error) {
	rs := &Rules{file: file, module: module}
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
	}
	seen := map[kind]map[pattern]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		k, ok := kindOf(f[0])
		if !ok {
			bad(n, "unknown row %q (want may-import, may-import-external, only-imported-by, must-not-link or planned)", f[0])
			continue
		}
		r := &rule{kind: k, line: n}
		args := f[1:]
		if k != planned {
			if len(args) == 0 {
				bad(n, "%s needs a package pattern", k)
				continue
			}
			p, err := parsePattern(args[0], module)
			if err != nil || p.std || !inModule(p.path, module) {
				bad(n, "%s %q: the row's subject must be packages of the module", k, args[0])
				continue
			}
			if prev, dup := seen[k][p]; dup && k != mustNotLink {
				bad(n, "%s %s: a second row for the same packages (the first is at line %d)", k, args[0], prev)
				continue
			}
			if seen[k] == nil {
				seen[k] = map[pattern]int{}
			}
			seen[k][p] = n
			r.subject = p
			args = args[1:]
		}
		if len(args) == 0 && (k == mustNotLink || k == planned || k == mayImportExternal) {
			bad(n, "%s needs at least one pattern", k)
			continue
		}
		ok = true
		for _, a := range args {
			p, err := parsePattern(a, module)
			if err != nil {
				bad(n, "pattern %q: %v", a, err)
				ok = false
				continue
			}
			if msg := checkListPattern(k, p, module); msg != "" {
				bad(n, "pattern %q: %s", a, msg)
				ok = false
				continue
			}
			r.list = append(r.list, p)
		}
		if ok {
			rs.rows = append(rs.rows, r)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	return rs, errors.Join(errs...)
}

// checkListPattern says what is wrong with p in a row of kind k ("": fine).
func checkListPattern(k kind, p pattern, module string) string {
	switch {
	case k == mayImportExternal && !p.std && inModule(p.path, module):
		return "may-import-external lists packages outside the module (or std)"
	case k != mayImportExternal && p.std:
		return "std is only for may-import-external"
	case (k == mayImport || k == onlyImportedBy || k == planned) && !inModule(p.path, module):
		return fmt.Sprintf("%s lists packages of the module (outside it: may-import-external or must-not-link)", k)
	}
	return ""
}

// inModule reports whether path is the module or a package in it.
func inModule(path, module string) bool {
	return path == module || strings.HasPrefix(path, module+"/")
}

// find returns the most specific row of kind k about pkg, or nil.
func (rs *Rules) find(k kind, pkg string) *rule {
	var best *rule
	for _, r := range rs.rows {
		if r.kind == k && r.subject.match(pkg) && (best == nil || r.subject.specificity() > best.subject.specificity()) {
			best = r
		}
	}
	return best
}

// rel names a package for messages: relative to the module when in it.
func (rs *Rules) rel(path string) string {
	if path == rs.module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, rs.module+"/"); ok {
		return r
	}
	return path
}

// patternString writes p back the way the rules file would.
func (rs *Rules) patternString(p pattern) string {
	if p.std {
		return "std"
	}
	s := rs.rel(p.path)
	if p.prefix {
		if s == "." {
			return "./..."
		}
		s += "/..."
	}
	return s
}
