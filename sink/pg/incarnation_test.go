package pg

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A world deleted and created again while the sink mirrors it (behind its
// old position), then while the sink is stopped (ahead of it): each
// incarnation is mirrored from seq 1 beside the old rows.
func TestRecreatedWorldIsMirroredFromSeqOneBesideTheOldRows(t *testing.T) {
	_, dsn := startPG(t)
	src := newFakeSource()
	src.Add("w", 10, 1000)
	inc1 := src.Incarnation("w")
	r := runSink(t, testConfig(dsn), src)
	requireFakeMirrored(t, dsn, src, "w", inc1, 10)

	src.Recreate("w", 4, 2000)
	inc2 := src.Incarnation("w")
	requireFakeMirrored(t, dsn, src, "w", inc2, 4)
	r.stop()

	src.Recreate("w", 15, 3000)
	r = runSink(t, testConfig(dsn), src)
	requireFakeMirrored(t, dsn, src, "w", src.Incarnation("w"), 15)
	r.stop()

	require.Len(t, readRows(t, dsn, "w", inc1), 10, "the first incarnation's rows stay")
	require.Len(t, readRows(t, dsn, "w", inc2), 4, "the second incarnation's rows stay")
}
