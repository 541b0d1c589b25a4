package jepsen

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	seedFlag = flag.Uint64("jepsen.seed", 0, "seed of every scenario (0: from the clock; env JEPSEN_SEED)")
	outFlag  = flag.String("jepsen.out", "", "directory for run outputs (default: $JEPSEN_OUT or a temp dir)")
	keepFlag = flag.Bool("jepsen.keep", false, "keep the output of passing runs too (env JEPSEN_KEEP=1)")

	binOnce sync.Once
	binDir  string
	bins    = map[string]string{}
	binErr  error
	binMu   sync.Mutex
)

// gsdBinary builds gsd (with tags, if any) once per test binary.
func gsdBinary(t *testing.T, tags ...string) string {
	t.Helper()
	binOnce.Do(func() { binDir, binErr = os.MkdirTemp("", "gsd-jepsen-bin-") })
	if binErr != nil {
		t.Fatal(binErr)
	}
	binMu.Lock()
	defer binMu.Unlock()
	key := ""
	if len(tags) > 0 {
		key = tags[0]
	}
	if b, ok := bins[key]; ok {
		return b
	}
	// A prebuilt binary (e.g. built from a clean checkout while the tree is
	// mid-edit): JEPSEN_GSD_BIN, or JEPSEN_GSD_BIN_<TAG> for a tagged build.
	env := "JEPSEN_GSD_BIN"
	if key != "" {
		env += "_" + strings.ToUpper(key)
	}
	if b := os.Getenv(env); b != "" {
		bins[key] = b
		return b
	}
	b, err := BuildGSD(binDir, tags...)
	if err != nil {
		t.Fatal(err)
	}
	bins[key] = b
	return b
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func seed() uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	if s, err := strconv.ParseUint(os.Getenv("JEPSEN_SEED"), 10, 64); err == nil && s != 0 {
		return s
	}
	return uint64(time.Now().UnixNano())
}

func outDir(t *testing.T) string {
	if *outFlag != "" {
		return *outFlag
	}
	if d := os.Getenv("JEPSEN_OUT"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "gsd-jepsen")
}

func keep() bool { return *keepFlag || os.Getenv("JEPSEN_KEEP") == "1" }

// runScenario runs sc against bin and returns its result; it fails the
// test only on harness errors (the caller judges the verdict).
func runScenario(t *testing.T, sc Scenario, bin string) *Result {
	t.Helper()
	s := seed()
	t.Logf("seed %d (replay: go test -run '%s' -jepsen.seed %d)", s, t.Name(), s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, sc, s, bin, outDir(t), keep(), t.Logf)
	if err != nil {
		t.Fatalf("seed %d: %v", s, err)
	}
	return res
}

// requireClean fails the test with the run's problems.
func requireClean(t *testing.T, res *Result) {
	t.Helper()
	if res.OK() && res.Lost == 0 && res.Linearizable && res.HashesEqual {
		return
	}
	for _, p := range res.Problems {
		t.Errorf("seed %d: %s", res.Seed, p)
	}
	t.Fatalf("scenario %s failed (seed %d); history, porcupine visualisation, summary and node logs in %s", res.Scenario, res.Seed, res.Dir)
}
