package pg

import (
	"testing"

	"github.com/gsd-dev/gsd/internal/pgtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { pgtest.Cleanup() }))
}
