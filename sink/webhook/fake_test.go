package webhook

import "github.com/gsd-dev/gsd/sink/internal/sinktest"

// fakeSource is the sinks' shared in-memory feed (sinktest.Source).
type fakeSource = sinktest.Source

func newFakeSource() *fakeSource { return sinktest.NewSource() }
