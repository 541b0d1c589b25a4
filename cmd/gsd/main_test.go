package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/gsd-dev/gsd/internal/pgtest"
	"github.com/gsd-dev/gsd/internal/testbin"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup() // the gsd binary the process tests built
	pgtest.Cleanup()  // the template PostgreSQL cluster
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
