package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gsd-dev/gsd/loadgen"
)

// The benchmark report is committed (docs/BENCHMARKS.md), so it must not
// carry the paths of the machine that made it: scripts/bench.sh runs its
// commands with absolute paths (go test runs in the package's directory, so
// the store suite needs one), and gsdctl bench records its own command line.
// benchPaths rewrites the absolute paths in the commands the report prints:
// a path inside the repository becomes relative to its root
// (bench-results/<stamp>/store.json), any other one keeps only its last
// element behind "…/" (…/x.json), which the report explains.

// absPath matches an absolute path that starts a word, a value after '='
// or a quoted string; a URL's "//host" is not one (':' precedes it).
var absPath = regexp.MustCompile(`(^|[\s='"(])(/[^\s'"();|&<>]*)`)

// outsideMark stands for a directory outside the repository.
const outsideMark = "…/"

// benchPaths rewrites paths relative to a repository root.
type benchPaths struct {
	roots []string // the root, and its real path when symlinks differ
}

// newBenchPaths returns a rewriter for root; "" finds the repository root
// from the working directory (the nearest directory holding go.mod, else
// the working directory itself).
func newBenchPaths(root string) (benchPaths, error) {
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return benchPaths{}, err
		}
		root = findRepoRoot(wd)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return benchPaths{}, err
	}
	p := benchPaths{roots: []string{abs}}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		p.roots = append(p.roots, real)
	}
	return p, nil
}

// findRepoRoot returns the nearest directory from dir upward that holds
// go.mod; dir itself when none does (gsdctl run outside a checkout).
func findRepoRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// command rewrites every absolute path in a command line.
func (p benchPaths) command(s string) string {
	return absPath.ReplaceAllStringFunc(s, func(m string) string {
		lead := ""
		if m[0] != '/' {
			lead, m = m[:1], m[1:]
		}
		return lead + p.path(m)
	})
}

// path rewrites one absolute path.
func (p benchPaths) path(abs string) string {
	clean := filepath.Clean(abs)
	for _, r := range p.roots {
		if clean == r {
			return "."
		}
		if rel, ok := strings.CutPrefix(clean, r+string(filepath.Separator)); ok && r != string(filepath.Separator) {
			if strings.HasSuffix(abs, "/") {
				rel += "/"
			}
			return rel
		}
	}
	if clean == "/" {
		return abs
	}
	return outsideMark + filepath.Base(clean)
}

// report rewrites the paths in a bench run's command lines and
// parameters.
func (p benchPaths) report(r *loadgen.Report) {
	r.Command = p.command(r.Command)
	for _, res := range r.Results {
		res.Command = p.command(res.Command)
		for k, v := range res.Params {
			if s, ok := v.(string); ok {
				res.Params[k] = p.command(s)
			}
		}
	}
}

// text replaces the repository root's absolute path in free text (the
// hand-written notes), leaving everything else as written.
func (p benchPaths) text(s string) string {
	for _, r := range p.roots {
		if r != string(filepath.Separator) {
			s = strings.ReplaceAll(s, r+"/", "")
		}
	}
	return s
}
