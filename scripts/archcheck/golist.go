package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// listed is the part of `go list -json` output the checker reads.
type listed struct {
	ImportPath     string
	Dir            string
	Imports        []string
	Deps           []string
	GoFiles        []string
	CgoFiles       []string
	IgnoredGoFiles []string // other build tags and platforms
	DepOnly        bool
	Module         *struct {
		Path string
		Dir  string
		Main bool
	}
}

// load runs `go list -deps -json ./...` once in dir and returns the
// module's packages with the imports of their non-test files under every
// build tag (parsed from the files) and their default-build closure.
func load(goCmd, dir string) (*Graph, error) {
	cmd := exec.Command(goCmd, "list", "-deps",
		"-json=ImportPath,Dir,Imports,Deps,GoFiles,CgoFiles,IgnoredGoFiles,DepOnly,Module", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list in %s: %w\n%s", dir, err, stderr.Bytes())
	}
	g := &Graph{Edges: map[string][]string{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		g.Edges[l.ImportPath] = l.Imports
		if l.DepOnly || l.Module == nil || !l.Module.Main {
			continue
		}
		g.Module = l.Module.Path
		p := &Package{Path: l.ImportPath, Deps: l.Deps, Imports: map[string]string{}}
		files := append(append(append([]string(nil), l.GoFiles...), l.CgoFiles...), l.IgnoredGoFiles...)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			if err := fileImports(filepath.Join(l.Dir, f), l.Module.Dir, p.Imports); err != nil {
				return nil, err
			}
		}
		g.Packages = append(g.Packages, p)
	}
	if g.Module == "" {
		return nil, fmt.Errorf("go list in %s: no package of the main module", dir)
	}
	return g, nil
}

// fileImports adds the imports of one file to imports, each with its
// position relative to root unless an earlier file already gave one.
func fileImports(file, root string, imports map[string]string) error {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly)
	if err != nil {
		return err
	}
	name := file
	if r, err := filepath.Rel(root, file); err == nil {
		name = filepath.ToSlash(r)
	}
	for _, s := range f.Imports {
		imp, err := strconv.Unquote(s.Path.Value)
		if err != nil {
			return fmt.Errorf("%s: import %s: %w", name, s.Path.Value, err)
		}
		if _, ok := imports[imp]; !ok {
			imports[imp] = fmt.Sprintf("%s:%d", name, fset.Position(s.Pos()).Line)
		}
	}
	return nil
}
