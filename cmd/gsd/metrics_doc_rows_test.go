package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMetricsDocRowsNameOnlyMetricsTheCodeHas is the other direction of
// TestMetricsDocListsEveryMetric: a row of docs/METRICS.md or of
// docs/INTEGRATIONS.md's metric tables, or a metric in an alert rule, that
// the code no longer defines would have an operator alert on a series
// that never comes.
func TestMetricsDocRowsNameOnlyMetricsTheCodeHas(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, n := range codeMetrics(t) {
		known[n] = true
	}
	row := regexp.MustCompile("(?m)^\\| `(gsd_[a-z0-9_]+)(?:\\{[^}]*\\})?`")
	expr := regexp.MustCompile(`(?m)^\s*expr: (.*)$`)
	name := regexp.MustCompile(`\b(gsd_[a-z0-9_]+?)(_bucket|_sum|_count)?\b`)
	rows := 0
	for _, doc := range []string{"METRICS.md", "INTEGRATIONS.md"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", doc))
		require.NoError(t, err)
		for _, m := range row.FindAllSubmatch(b, -1) {
			rows++
			require.True(t, known[string(m[1])], "docs/%s has a row for %s, which no code defines", doc, m[1])
		}
		for _, e := range expr.FindAllSubmatch(b, -1) {
			for _, m := range name.FindAllStringSubmatch(string(e[1]), -1) {
				require.True(t, known[m[1]] || known[m[0]], "an alert rule in docs/%s queries %s, which no code defines", doc, m[0])
			}
		}
	}
	require.Greater(t, rows, 80, "the scan finds the tables' rows")
}
