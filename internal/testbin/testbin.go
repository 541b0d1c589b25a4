// Package testbin builds the gsd binary for tests that run real processes:
// once per test binary, instrumented for coverage, so that what the
// processes execute counts in `make test`'s integration coverage
// (GOCOVERDIR, which the Makefile points at $GSD_GOCOVERDIR).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once    sync.Once
	bin     string
	dir     string
	buildEr error
)

// GSD returns the path of a coverage-instrumented gsd binary, building it on
// first use. Call Cleanup from TestMain after m.Run to remove it.
func GSD(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if dir, buildEr = os.MkdirTemp("", "gsd-bin-"); buildEr != nil {
			return
		}
		bin = filepath.Join(dir, "gsd")
		cmd := exec.Command("go", "build", "-cover", "-coverpkg=github.com/gsd-dev/gsd/...", "-o", bin, "github.com/gsd-dev/gsd/cmd/gsd")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildEr = fmt.Errorf("go build gsd: %v\n%s", err, out)
		}
	})
	if buildEr != nil {
		t.Fatal(buildEr)
	}
	return bin
}

// CoverDir returns where processes should write coverage counters
// (GOCOVERDIR): $GSD_GOCOVERDIR, or a fresh temporary directory when it is
// unset (an instrumented binary warns without GOCOVERDIR).
func CoverDir(t testing.TB) string {
	d := os.Getenv("GSD_GOCOVERDIR")
	if d == "" {
		d = t.TempDir()
	} else if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// Cleanup removes the built binary; pass it to goleak.Cleanup or call it
// after m.Run.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
