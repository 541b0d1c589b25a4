package freeport

import (
	"net"
	"strconv"
	"testing"

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
	free, err := Addr()
	require.NoError(t, err)
	_, fp, _ := net.SplitHostPort(free)
	want, _ := strconv.Atoi(fp)
	ports := []int{busy, busy, want}
	addr, err := pick(func() int { p := ports[0]; ports = ports[1:]; return p })
	require.NoError(t, err)
	require.Equal(t, free, addr)

	_, err = pick(func() int { return busy })
	require.ErrorIs(t, err, ErrNone)
}
