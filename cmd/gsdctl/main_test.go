package main

import (
	"os"
	"testing"

	"github.com/gsd-dev/gsd/internal/testbin"
	"go.uber.org/goleak"
)

// asGsdctl, set in a test's environment, makes this test binary run as
// gsdctl: what bench --relay-procs starts (os.Executable) is then gsdctl.
const asGsdctl = "GSDCTL_TEST_AS_GSDCTL"

func TestMain(m *testing.M) {
	if os.Getenv(asGsdctl) == "1" {
		main()
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		testbin.Cleanup()
		os.Exit(code)
	}))
}
