//go:build jepsen && linux

package jepsen

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var (
	durationFlag = flag.Duration("jepsen.duration", 60*time.Second, "workload time of each matrix scenario (env JEPSEN_DURATION)")
	tableFlag    = flag.String("jepsen.table", "", "append the matrix table (markdown) to this file")
)

func matrixDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("JEPSEN_DURATION")); err == nil && d > 0 {
		return d
	}
	return *durationFlag
}

// TestMatrix runs every scenario of the fault matrix against gsd and
// requires a clean verdict from each. The table of figures is logged and,
// with -jepsen.table, written as markdown.
func TestMatrix(t *testing.T) {
	bin := gsdBinary(t)
	var rows []string
	for _, sc := range Matrix() {
		sc.Duration = matrixDuration()
		t.Run(sc.Name, func(t *testing.T) {
			b := bin
			if sc.Tags != "" {
				b = gsdBinary(t, sc.Tags)
			}
			res := runScenario(t, sc, b)
			lin := "yes"
			if !res.Linearizable {
				lin = "NO"
			}
			heq := "yes"
			if !res.HashesEqual {
				heq = "NO"
			}
			rows = append(rows, fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %d |",
				sc.Name, res.Ops, res.Writes, res.Acked, res.Unknown, res.Lost, lin, heq,
				res.Unavailable.Round(time.Millisecond), res.Recovery.Round(time.Millisecond), len(res.Faults)))
			requireClean(t, res)
		})
	}
	table := "| scenario | ops | writes | acked | unknown | lost | linearizable | hashes equal | first ack after fault start (worst) | first ack after heal (worst) | faults |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	t.Logf("matrix:\n%s", table)
	if *tableFlag != "" {
		if err := os.WriteFile(*tableFlag, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}
