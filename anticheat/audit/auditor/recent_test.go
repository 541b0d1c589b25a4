package auditor

import (
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

func TestCheckpointAtGivesTheNewestSignedNoLargerThanTheSeq(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	k, v := key(t, "k")
	cfg := testConfig(logs)
	cfg.Signers = []note.Signer{k}
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	start(t, a)
	require.Nil(t, a.CheckpointAt("arena", 5), "a world not logged")
	src.add("arena", 0)

	sizeOf := func(msg []byte) int64 {
		t.Helper()
		require.NotNil(t, msg)
		cp, _, err := audit.OpenCheckpoint(msg, v)
		require.NoError(t, err)
		return cp.Size
	}
	grow := func(n int) []byte {
		t.Helper()
		st, err := a.Status("arena")
		require.NoError(t, err)
		src.add("arena", n)
		waitSize(t, a, "arena", st.Size+int64(n))
		msg, err := a.Sign("arena")
		require.NoError(t, err)
		return msg
	}
	two := grow(2)
	require.Nil(t, a.CheckpointAt("arena", 1), "nothing signed that old")
	require.Equal(t, two, a.CheckpointAt("arena", 2))
	require.Equal(t, two, a.CheckpointAt("arena", 1<<63), "a seq past the tree")
	again, err := a.Sign("arena") // signed again at the same size: kept once
	require.NoError(t, err)
	require.Equal(t, two, again)
	five := grow(3)
	require.Equal(t, two, a.CheckpointAt("arena", 4), "never one newer than the seq")
	require.Equal(t, five, a.CheckpointAt("arena", 5))
	require.Equal(t, int64(5), sizeOf(a.CheckpointAt("arena", 6)))

	// Only the newest Recent are kept.
	for range Recent - 1 {
		grow(1)
	}
	require.Nil(t, a.CheckpointAt("arena", 4), "the oldest went")
	require.Equal(t, five, a.CheckpointAt("arena", 5))
	grow(1)
	require.Nil(t, a.CheckpointAt("arena", 5))
	require.Equal(t, int64(6), sizeOf(a.CheckpointAt("arena", 6)))
}
