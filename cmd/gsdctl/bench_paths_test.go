package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBenchPathsMakeCommandPathsRelativeToTheRepository(t *testing.T) {
	p := benchPaths{roots: []string{"/work/main"}}
	for in, want := range map[string]string{
		"make bench   # = scripts/bench.sh; results in /work/main/bench-results/20261129T003152Z": "make bench   # = scripts/bench.sh; results in bench-results/20261129T003152Z",
		"GSD_STORE_BENCH=/work/main/bench-results/s/store.json go test ./store/":                  "GSD_STORE_BENCH=bench-results/s/store.json go test ./store/",
		"gsdctl bench --out /work/main/bench-results/s/client.json battle":                        "gsdctl bench --out bench-results/s/client.json battle",
		"gsdctl bench --out=/work/main/r.json --gsd '/work/main/bin/gsd' battle":                  "gsdctl bench --out=r.json --gsd 'bin/gsd' battle",
		"cd /work/main && make bench": "cd . && make bench",
		"cd /work/main/ && ls":        "cd . && ls",
		"ls /work/main/docs/":         "ls docs/",
		// Outside the repository only the last element stays.
		"GSD_STORE_BENCH=/tmp/sbq1.json go test":  "GSD_STORE_BENCH=…/sbq1.json go test",
		"/tmp/udpb-bin/gsdctl bench --quiet play": "…/gsdctl bench --quiet play",
		"ls /work/mainly/x":                       "ls …/x",
		"ls /":                                    "ls /",
		// Not absolute paths: left alone.
		"gsdctl --addr http://127.0.0.1:7070/v1/status bench": "gsdctl --addr http://127.0.0.1:7070/v1/status bench",
		"go test -run '^$' -bench . ./fsm/":                   "go test -run '^$' -bench . ./fsm/",
		"bin/gsdctl bench play":                               "bin/gsdctl bench play",
	} {
		require.Equal(t, want, p.command(in), in)
	}
	require.Equal(t, "see bench-results/x and /tmp/y", p.text("see /work/main/bench-results/x and /tmp/y"))
}

func TestBenchPathsFindTheRepositoryRootFromASubdirectory(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "cmd", "gsdctl")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644))
	require.Equal(t, root, findRepoRoot(sub))
	lone := t.TempDir() // no go.mod up to /: the directory itself
	require.Equal(t, lone, findRepoRoot(lone))
	// The test runs in cmd/gsdctl: the default root is the module's.
	p, err := newBenchPaths("")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(p.roots[0], "go.mod"))
	require.NoError(t, err)
	require.Equal(t, "cmd/gsdctl", filepath.ToSlash(p.path(filepath.Join(p.roots[0], "cmd", "gsdctl"))))
}

func TestBenchReportPrintsNoPathOfTheMachineThatRanIt(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "repo") // the repository the bench ran in
	out := filepath.Join(root, "bench-results", "20261129T003152Z")
	require.NoError(t, os.MkdirAll(out, 0o755))
	client := filepath.Join(out, "client.json")
	require.NoError(t, os.WriteFile(client, []byte(`{"command":"gsdctl bench --out `+client+` battle","cluster":"3 local gsd processes",
		"results":[{"scenario":"battle","level":"client","command":"gsdctl bench --out `+client+` battle",
		"params":{"players":10,"gsd":"`+filepath.Join(dir, "elsewhere", "gsd")+`"},"latency":{"action_commit":{"count":1,"p50_ms":1,"p99_ms":2}}}]}`), 0o644))
	store := filepath.Join(out, "store.json")
	require.NoError(t, os.WriteFile(store, []byte(`{"level":"store","command":"GSD_STORE_BENCH=`+store+` go test ./store/","workload":"w",
		"runs":[{"mode":"replicated","writers":1,"events_per_s":10}]}`), 0o644))
	gob := filepath.Join(out, "gobench-fsm.txt")
	require.NoError(t, os.WriteFile(gob, []byte("BenchmarkX 1 2 ns/op\n"), 0o644))
	notes := filepath.Join(dir, "notes.md")
	require.NoError(t, os.WriteFile(notes, []byte("## Findings\n\nrun in "+out+"\n"), 0o644))
	md := filepath.Join(root, "docs", "BENCHMARKS.md")
	mustRun(t, "bench", "report", "--root", root, "--client", client, "--store", store, "--gobench", gob, "--notes", notes,
		"--command", "make bench   # = scripts/bench.sh; results in "+out,
		"--command", "GSD_STORE_BENCH="+store+" go test ./store/",
		"--command", "gsdctl bench --out /tmp/x.json play",
		"--out", md, "--plots", filepath.Join(root, "docs", "bench"))
	b, err := os.ReadFile(md)
	require.NoError(t, err)
	doc := string(b)
	require.NotContains(t, doc, dir, "an absolute path of the machine")
	require.NotContains(t, doc, "/tmp/")
	requireContains(t, doc,
		"results in bench-results/20261129T003152Z\n",
		"GSD_STORE_BENCH=bench-results/20261129T003152Z/store.json go test ./store/",
		"gsdctl bench --out bench-results/20261129T003152Z/client.json battle",
		"gsdctl bench --out …/x.json play",
		"gsd=…/gsd",
		"## bench-results/20261129T003152Z/gobench-fsm.txt",
		"run in bench-results/20261129T003152Z",
		"Paths are relative to the repository root",
		"](bench/client-battle.svg)")
}
