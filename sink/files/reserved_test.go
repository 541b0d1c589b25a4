package files

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gsd's own worlds (gsd.relays here) get no files unless asked for.
func TestFilesLeaveGsdsOwnWorldsOutUnlessReservedIsSet(t *testing.T) {
	src := newFakeSource()
	src.Add("gsd.relays", 10, 1e18)
	src.Add("play", 10, 1e18)
	dir := t.TempDir()
	s := startSink(t, testConfig(dir), src)
	require.Eventually(t, func() bool { return len(readFiles(t, dir, "play")) == 10 }, 20*time.Second, time.Millisecond)
	s.stop()
	require.Empty(t, readFiles(t, dir, "gsd.relays"))
	require.Zero(t, s.s.Position("gsd.relays"))

	dir = t.TempDir()
	cfg := testConfig(dir)
	cfg.Reserved = true
	s = startSink(t, cfg, src)
	require.Eventually(t, func() bool { return len(readFiles(t, dir, "gsd.relays")) == 10 }, 20*time.Second, time.Millisecond)
	s.stop()
	requireExactlyOnce(t, dir, src, "gsd.relays")
}
