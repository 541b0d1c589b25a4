// Command covergate merges Go coverage profiles and enforces per-package and
// overall statement-coverage thresholds. It is part of the build gate (see the
// Makefile) and is not shipped.
//
// Usage:
//
//	go run ./scripts/covergate merge [-mode atomic] -o OUT IN...
//	go run ./scripts/covergate gate [-profile coverage/coverage.out]
//	        [-gates scripts/coverage-gates.txt] [-min 0] [-module PATH]
//	        [-exclude examples/...,scripts/...]
//
// Profile lines have the form "file:startLine.startCol,endLine.endCol numStmts count"
// after a "mode: X" header. The same block may appear several times (go test
// with -coverpkg writes one copy per test binary; unit and integration profiles
// overlap). merge sums the counts of identical blocks; gate takes the maximum,
// and a block is covered when its count is > 0. Statements are weighted by
// numStmts.
//
// Gate file: one "<import path or dir> <percent>" per line; '#' starts a
// comment. A plain path matches exactly one package (directory); a trailing
// "/..." matches the package and everything below it, each matched package
// being checked on its own. A path ending in ".go" names one file
// ("api/session_admin.go"), checked on its own. Paths not starting with the module path are taken
// relative to the module root ("fsm", "./fsm/...").
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "merge":
		err = runMerge(os.Args[2:], os.Stdout)
	case "gate":
		err = runGate(os.Args[2:], os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "covergate:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: covergate merge [-mode atomic] -o OUT IN...\n       covergate gate [-profile F] [-gates F] [-min PCT] [-module PATH] [-exclude LIST]")
	os.Exit(2)
}

// blockKey identifies a basic block within a file.
type blockKey struct {
	file                string
	startLine, startCol int
	endLine, endCol     int
}

type block struct {
	stmts int64
	count int64
}

// profile is a deduplicated set of blocks.
type profile map[blockKey]block

var lineRE = regexp.MustCompile(`^(.+):([0-9]+)\.([0-9]+),([0-9]+)\.([0-9]+) ([0-9]+) ([0-9]+)$`)

// parseProfile reads one profile (or several concatenated ones) into p,
// combining duplicate blocks with combine.
func parseProfile(r io.Reader, name string, p profile, combine func(a, b int64) int64) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	ln := 0
	for sc.Scan() {
		ln++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "mode:") {
			continue
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			return fmt.Errorf("%s:%d: malformed coverage line %q", name, ln, line)
		}
		var n [6]int64
		for i := range n {
			v, err := strconv.ParseInt(m[i+2], 10, 64)
			if err != nil {
				return fmt.Errorf("%s:%d: %v", name, ln, err)
			}
			n[i] = v
		}
		k := blockKey{file: m[1], startLine: int(n[0]), startCol: int(n[1]), endLine: int(n[2]), endCol: int(n[3])}
		b := block{stmts: n[4], count: n[5]}
		if old, ok := p[k]; ok {
			b.stmts = max(old.stmts, b.stmts)
			b.count = combine(old.count, b.count)
		}
		p[k] = b
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

func readProfiles(files []string, combine func(a, b int64) int64) (profile, error) {
	p := profile{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		err = parseProfile(fh, f, p, combine)
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

func sumCounts(a, b int64) int64 {
	s := a + b
	if s > math.MaxUint32 { // atomic counters are uint32
		s = math.MaxUint32
	}
	return s
}

func maxCounts(a, b int64) int64 { return max(a, b) }

func (p profile) sortedKeys() []blockKey {
	keys := make([]blockKey, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.file != b.file {
			return a.file < b.file
		}
		if a.startLine != b.startLine {
			return a.startLine < b.startLine
		}
		if a.startCol != b.startCol {
			return a.startCol < b.startCol
		}
		if a.endLine != b.endLine {
			return a.endLine < b.endLine
		}
		return a.endCol < b.endCol
	})
	return keys
}

func runMerge(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	out := fs.String("o", "", "output profile (required)")
	mode := fs.String("mode", "atomic", "mode written in the output header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("merge: need -o OUT and at least one input profile")
	}
	p, err := readProfiles(fs.Args(), sumCounts)
	if err != nil {
		return err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "mode: %s\n", *mode)
	for _, k := range p.sortedKeys() {
		b := p[k]
		fmt.Fprintf(&sb, "%s:%d.%d,%d.%d %d %d\n", k.file, k.startLine, k.startCol, k.endLine, k.endCol, b.stmts, b.count)
	}
	if err := os.WriteFile(*out, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "covergate: merged %d profile(s) into %s (%d blocks)\n", fs.NArg(), *out, len(p))
	return nil
}

type pkgStat struct {
	stmts, covered int64
}

func (s pkgStat) pct() float64 {
	if s.stmts == 0 {
		return 100
	}
	return 100 * float64(s.covered) / float64(s.stmts)
}

// below reports whether s is strictly below threshold percent, without
// rounding surprises (99.99% is below 100).
func (s pkgStat) below(threshold float64) bool {
	return float64(s.covered)*100 < threshold*float64(s.stmts)
}

// fmtPct truncates rather than rounds, so a failing 99.97% never prints as 100.0.
func fmtPct(p float64) string {
	return fmt.Sprintf("%.1f%%", math.Floor(p*10)/10)
}

func okFail(failed bool) string {
	if failed {
		return "FAIL"
	}
	return "ok"
}

type pattern struct {
	path   string // import path (of a package, or of a file: module/dir/x.go)
	prefix bool   // trailing "/..."
	file   bool   // names one .go file
}

func (pt pattern) String() string {
	if pt.prefix {
		return pt.path + "/..."
	}
	return pt.path
}

func (pt pattern) match(pkg string) bool {
	if pkg == pt.path {
		return true
	}
	return pt.prefix && strings.HasPrefix(pkg, pt.path+"/")
}

// parsePattern turns "fsm", "./fsm/...", "github.com/x/y/fsm" into an import
// path pattern under module.
func parsePattern(s, module string) pattern {
	var pt pattern
	if s == "..." || s == "./..." {
		return pattern{path: module, prefix: true}
	}
	pt.file = strings.HasSuffix(s, ".go")
	if strings.HasSuffix(s, "/...") {
		pt.prefix = true
		s = strings.TrimSuffix(s, "/...")
	}
	s = strings.TrimSuffix(s, "/")
	switch {
	case s == "." || s == "":
		s = module
	case s == module || strings.HasPrefix(s, module+"/"):
	case strings.HasPrefix(s, "./"):
		s = module + "/" + strings.TrimPrefix(s, "./")
	case strings.Contains(strings.SplitN(s, "/", 2)[0], "."):
		// Looks like a foreign import path (has a domain); keep as is.
	default:
		s = module + "/" + s
	}
	pt.path = s
	return pt
}

type gate struct {
	pat       pattern
	threshold float64
	line      int
}

func parseGates(r io.Reader, name, module string) ([]gate, error) {
	var gates []gate
	sc := bufio.NewScanner(r)
	ln := 0
	for sc.Scan() {
		ln++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"<package> <percent>\", got %q", name, ln, sc.Text())
		}
		t, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		if err != nil || t < 0 || t > 100 {
			return nil, fmt.Errorf("%s:%d: bad percent %q", name, ln, f[1])
		}
		gates = append(gates, gate{pat: parsePattern(f[0], module), threshold: t, line: ln})
	}
	return gates, sc.Err()
}

// moduleFromGoMod returns the module path declared in ./go.mod.
func moduleFromGoMod() (string, error) {
	data, err := os.ReadFile("go.mod")
	if err != nil {
		return "", fmt.Errorf("reading go.mod (use -module): %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`), nil
		}
	}
	return "", errors.New("no module line in go.mod (use -module)")
}

func runGate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gate", flag.ContinueOnError)
	profPath := fs.String("profile", "coverage/coverage.out", "coverage profile(s), comma-separated")
	gatesPath := fs.String("gates", "scripts/coverage-gates.txt", "per-package gate file (empty: none)")
	minPct := fs.Float64("min", 0, "minimum overall statement coverage, percent")
	module := fs.String("module", "", "module path (default: read from ./go.mod)")
	exclude := fs.String("exclude", "examples/...,scripts/...", "comma-separated packages excluded from accounting (same syntax as gate file paths)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("gate: unexpected arguments %q", fs.Args())
	}
	if *module == "" {
		m, err := moduleFromGoMod()
		if err != nil {
			return err
		}
		*module = m
	}

	p, err := readProfiles(strings.Split(*profPath, ","), maxCounts)
	if err != nil {
		return err
	}

	var excl []pattern
	for _, e := range strings.Split(*exclude, ",") {
		if e = strings.TrimSpace(e); e != "" {
			excl = append(excl, parsePattern(e, *module))
		}
	}
	excluded := func(pkg string) bool {
		for _, e := range excl {
			if e.match(pkg) {
				return true
			}
		}
		return false
	}

	stats := map[string]*pkgStat{}
	files := map[string]*pkgStat{}
	var total pkgStat
	nExcluded := map[string]bool{}
	for k, b := range p {
		pkg := path.Dir(k.file)
		if excluded(pkg) {
			nExcluded[pkg] = true
			continue
		}
		s := stats[pkg]
		if s == nil {
			s = &pkgStat{}
			stats[pkg] = s
		}
		f := files[k.file]
		if f == nil {
			f = &pkgStat{}
			files[k.file] = f
		}
		s.stmts += b.stmts
		f.stmts += b.stmts
		total.stmts += b.stmts
		if b.count > 0 {
			s.covered += b.stmts
			f.covered += b.stmts
			total.covered += b.stmts
		}
	}
	if total.stmts == 0 {
		return fmt.Errorf("gate: no statements found in %s", *profPath)
	}

	var gates []gate
	if *gatesPath != "" {
		fh, err := os.Open(*gatesPath)
		if err != nil {
			return err
		}
		gates, err = parseGates(fh, *gatesPath, *module)
		fh.Close()
		if err != nil {
			return err
		}
	}

	pkgs := make([]string, 0, len(stats))
	for pkg := range stats {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)

	// Evaluate gates. Every matching gate must pass; the table shows the
	// strictest threshold and FAIL if any matching gate failed.
	type gateRes struct {
		threshold float64
		failed    bool
	}
	var failures []string
	gateCol := map[string]*gateRes{}
	var fileRows []string
	for _, g := range gates {
		if g.pat.file {
			s := files[g.pat.path]
			if s == nil {
				failures = append(failures, fmt.Sprintf("gate %s (line %d) matched no file with statements in the profile", g.pat, g.line))
				continue
			}
			failed := s.below(g.threshold)
			if failed {
				failures = append(failures, fmt.Sprintf("%s: %s < %g%% (file gate, line %d)", g.pat, fmtPct(s.pct()), g.threshold, g.line))
			}
			fileRows = append(fileRows, fmt.Sprintf("%s\t%d\t%d\t%s\t>=%g%% %s\t", strings.TrimPrefix(g.pat.path, *module+"/"), s.stmts, s.covered, fmtPct(s.pct()), g.threshold, okFail(failed)))
			continue
		}
		matched := 0
		for _, pkg := range pkgs {
			if !g.pat.match(pkg) {
				continue
			}
			matched++
			s := stats[pkg]
			r := gateCol[pkg]
			if r == nil {
				r = &gateRes{}
				gateCol[pkg] = r
			}
			r.threshold = max(r.threshold, g.threshold)
			if s.below(g.threshold) {
				r.failed = true
				failures = append(failures, fmt.Sprintf("%s: %s < %g%% (gate %s, line %d)", pkg, fmtPct(s.pct()), g.threshold, g.pat, g.line))
			}
		}
		if matched == 0 {
			failures = append(failures, fmt.Sprintf("gate %s (line %d) matched no package with statements in the profile (typo, or package not built/tested?)", g.pat, g.line))
		}
	}

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PACKAGE\tSTMTS\tCOVERED\tCOVER\tGATE\t")
	for _, pkg := range pkgs {
		s := stats[pkg]
		name := strings.TrimPrefix(pkg, *module+"/")
		if pkg == *module {
			name = "."
		}
		col := ""
		if r := gateCol[pkg]; r != nil {
			col = fmt.Sprintf(">=%g%% %s", r.threshold, okFail(r.failed))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t\n", name, s.stmts, s.covered, fmtPct(s.pct()), col)
	}
	overallFailed := total.below(*minPct)
	if overallFailed {
		failures = append(failures, fmt.Sprintf("overall: %s < COVER_MIN %g%%", fmtPct(total.pct()), *minPct))
	}
	fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%s\t>=%g%% %s\t\n", total.stmts, total.covered, fmtPct(total.pct()), *minPct, okFail(overallFailed))
	if len(fileRows) > 0 {
		fmt.Fprintln(tw, "FILE\t\t\t\t\t")
		for _, r := range fileRows {
			fmt.Fprintln(tw, r)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(nExcluded) > 0 {
		fmt.Fprintf(stdout, "(%d package(s) excluded from accounting: %s)\n", len(nExcluded), *exclude)
	}

	if len(failures) > 0 {
		fmt.Fprintln(stdout, "\ncoverage gate FAILED:")
		for _, f := range failures {
			fmt.Fprintln(stdout, "  -", f)
		}
		return errors.New("coverage gate failed")
	}
	fmt.Fprintln(stdout, "coverage gate passed")
	return nil
}
