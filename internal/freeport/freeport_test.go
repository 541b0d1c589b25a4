package freeport

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAddrIsBindableAndBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		addr, err := Addr()
		require.NoError(t, err)
		host, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		require.Equal(t, "127.0.0.1", host)
		p, err := strconv.Atoi(port)
		require.NoError(t, err)
		require.GreaterOrEqual(t, p, low)
		require.Less(t, p, high)
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
}

func TestAPortInUseIsSkipped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	l2, err := net.Listen("tcp", "127.0.0.1:0") // a port no pick has claimed
	require.NoError(t, err)
	free := l2.Addr().String()
	want := l2.Addr().(*net.TCPAddr).Port
	require.NoError(t, l2.Close())
	ports := []int{busy, busy, want}
	addr, err := pick(func() int { p := ports[0]; ports = ports[1:]; return p })
	require.NoError(t, err)
	require.Equal(t, free, addr)

	_, err = pick(func() int { return busy })
	require.ErrorIs(t, err, ErrNone)
}

func TestAPortClaimedByAnotherPickIsSkippedUntilItsClaimEnds(t *testing.T) {
	dir, keep := claimDir, claimFor
	t.Cleanup(func() { claimDir, claimFor = dir, keep })
	claimDir, claimFor = filepath.Join(t.TempDir(), "claims"), 50*time.Millisecond // made on the first claim

	free, err := Addr()
	require.NoError(t, err)
	_, fp, _ := net.SplitHostPort(free)
	port, _ := strconv.Atoi(fp)
	require.False(t, claim(port), "claimed by the pick that handed it out")
	_, err = pick(func() int { return port })
	require.ErrorIs(t, err, ErrNone, "no other pick hands it out meanwhile")
	require.Eventually(t, func() bool { return claim(port) }, 10*time.Second, 10*time.Millisecond, "free again once the claim ends")
}

func TestWithoutClaimsTheBindCheckAloneDecides(t *testing.T) {
	dir := claimDir
	t.Cleanup(func() { claimDir = dir })
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	claimDir = filepath.Join(file, "claims") // under a file: no claim can be made
	require.True(t, claim(20001))
	require.True(t, claim(20001))
	_, err := Addr()
	require.NoError(t, err)
}

// By default a claim lasts as long as the process: a node a test stops
// and starts again on its ports finds them unclaimed by any other pick
// however long it was down (the file is kept open, not left to its
// finalizer).
func TestAClaimLastsAsLongAsTheProcess(t *testing.T) {
	require.Zero(t, claimFor, "the default")
	dir := claimDir
	t.Cleanup(func() { claimDir = dir })
	claimDir = filepath.Join(t.TempDir(), "claims")
	free, err := Addr()
	require.NoError(t, err)
	_, fp, _ := net.SplitHostPort(free)
	port, _ := strconv.Atoi(fp)
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // finalizers run on their own goroutine
	}
	require.False(t, claim(port), "still claimed")
}
