package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// metricName finds a collector's name in Go source: a "gsd_..." string
// literal in a file that uses the Prometheus client (Name: "gsd_x", or a
// helper's argument).
var metricName = regexp.MustCompile(`"(gsd_[a-z0-9_]+)"`)

// codeMetrics returns every gsd_ metric the module's non-test code
// defines, sorted.
func codeMetrics(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "client_golang/prometheus") {
			return nil
		}
		for _, m := range metricName.FindAllSubmatch(b, -1) {
			seen[string(m[1])] = true
		}
		return nil
	})
	require.NoError(t, err)
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestMetricsDocListsEveryMetric(t *testing.T) {
	t.Parallel()
	names := codeMetrics(t)
	require.Greater(t, len(names), 30, "the scan finds the collectors")
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "METRICS.md"))
	require.NoError(t, err)
	var missing []string
	for _, n := range names {
		if !strings.Contains(string(doc), "| `"+n+"` |") {
			missing = append(missing, n)
		}
	}
	require.Empty(t, missing, "docs/METRICS.md has no row for these metrics")
}

// TestGrafanaDashboardQueriesKnownMetrics: the dashboard is valid JSON and
// every query names metrics that exist.
func TestGrafanaDashboardQueriesKnownMetrics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "gsd.json"))
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &dash))
	require.NotEmpty(t, dash.Title)
	known := map[string]bool{}
	for _, n := range codeMetrics(t) {
		known[n] = true
	}
	used := regexp.MustCompile(`\b(gsd_[a-z0-9_]+?)(_bucket|_sum|_count)?\b`)
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			for _, m := range used.FindAllStringSubmatch(tg.Expr, -1) {
				name := m[1]
				if !known[name] && m[2] != "" {
					name += m[2] // a counter may end in _count itself
				}
				require.True(t, known[name] || known[m[0]], "panel %q queries unknown metric %s", p.Title, m[0])
			}
		}
	}
	require.Greater(t, exprs, 10)
}
