// Command archcheck checks the module's imports against a table of rules
// (docs/import-rules.txt) and that docs/ARCHITECTURE.md shows that table
// verbatim. `make arch`, part of `make lint`, runs it; it is not shipped.
//
// Usage:
//
//	go run ./scripts/archcheck [-dir .] [-rules docs/import-rules.txt]
//	        [-doc docs/ARCHITECTURE.md] [-fix-doc] [-go go]
//
// The rules file has one row per line; '#' starts a comment:
//
//	may-import PKG ALLOWED...           direct imports of module packages by PKG's non-test files
//	may-import-external PKG ALLOWED...  direct imports from outside the module (std: the standard library)
//	only-imported-by PKG IMPORTERS...   the packages whose non-test files may import PKG
//	must-not-link PKG FORBIDDEN...      PKG's transitive closure (go list -deps)
//	planned PATTERNS...                 packages not written yet
//
// Patterns are paths relative to the module root ("fsm", "cmd/gsd") or full
// import paths ("github.com/hashicorp/raft"); a trailing "/..." adds every
// package below, and "./..." is the whole module. The most specific
// may-import, may-import-external and only-imported-by row about a package
// governs it; every must-not-link row about it applies.
//
// It runs `go list -deps -json ./...` once. Direct imports are read from
// the non-test .go files under every build tag; the closure is the default
// build's. It fails (exit 1), printing each finding on its own line, when:
// a package imports or links what its rows do not allow ("client imports
// fsm: not allowed by rule at docs/import-rules.txt:N (client/ws.go:12)"); a
// package has no may-import row, or a package under internal/ has no
// only-imported-by row; a row is about packages that do not exist and no
// planned row names them; or the doc's copy of the rules differs from the
// file (-fix-doc copies the file into the doc instead).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run checks and returns the exit code: 0 clean, 1 findings or a failure,
// 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("archcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "root of the module to check")
	rulesName := fs.String("rules", "docs/import-rules.txt", "rules file, relative to -dir")
	docName := fs.String("doc", "docs/ARCHITECTURE.md", "document that shows the rules in a fenced block tagged "+docTag+", relative to -dir (empty: none)")
	fix := fs.Bool("fix-doc", false, "copy the rules file into the document's block, then check")
	goCmd := fs.String("go", "go", "the go command")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "archcheck: unexpected arguments %q\n", fs.Args())
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "archcheck:", err)
		return 1
	}
	rulesData, err := os.ReadFile(filepath.Join(*dir, *rulesName))
	if err != nil {
		return fail(err)
	}
	var found []string
	if *docName != "" {
		docPath := filepath.Join(*dir, *docName)
		doc, err := os.ReadFile(docPath)
		if err != nil {
			return fail(err)
		}
		if *fix {
			if doc, err = fixDoc(rulesData, doc); err != nil {
				return fail(fmt.Errorf("%s: %w", *docName, err))
			}
			if err := os.WriteFile(docPath, doc, 0o644); err != nil {
				return fail(err)
			}
		}
		if err := checkDoc(*rulesName, rulesData, *docName, doc); err != nil {
			found = append(found, err.Error())
		}
	}
	g, err := load(*goCmd, *dir)
	if err != nil {
		return fail(err)
	}
	rs, err := parseRules(*rulesName, g.Module, rulesData)
	if err != nil {
		return fail(err)
	}
	violations, notes := Check(rs, g)
	found = append(found, violations...)
	for _, n := range notes {
		fmt.Fprintln(stderr, "archcheck: note:", n)
	}
	for _, f := range found {
		fmt.Fprintln(stdout, f)
	}
	if len(found) > 0 {
		fmt.Fprintf(stderr, "archcheck: %d finding(s) against %s\n", len(found), *rulesName)
		return 1
	}
	fmt.Fprintf(stdout, "archcheck: %d packages follow %s\n", len(g.Packages), *rulesName)
	return 0
}
