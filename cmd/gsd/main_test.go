package main

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// binDir holds the gsd binary the process tests build (Linux only: they
// use Pdeathsig); TestMain removes it.
var binDir string

func cleanupBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupBinary()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
