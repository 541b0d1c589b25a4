package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gsd serves Raft through shard.Mux on --raft-addr: its one group is group
// 0; a connection naming another group is refused and counted, and the
// node goes on.
func TestRunServesRaftGroupZeroThroughTheMux(t *testing.T) {
	t.Parallel()
	n := startNode(t, "solo", t.TempDir())
	n.waitLeader(t)

	conn, err := net.Dial("tcp", n.raft)
	require.NoError(t, err)
	defer conn.Close()
	// The header of group 9: 0xF7, version 1, the group as a big-endian uint64.
	_, err = conn.Write([]byte{0xF7, 1, 0, 0, 0, 0, 0, 0, 0, 9})
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = conn.Read(make([]byte, 1))
	require.True(t, errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err), "refused: %v", err)

	metrics := func() string {
		resp, err := http.Get("http://" + n.http + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.Contains(t, metrics(), `gsd_raft_mux_connections_total{outcome="unknown_group"} 1`)
	require.Contains(t, metrics(), `gsd_is_leader{group="0"} 1`)
	n.waitLeader(t)
	require.Equal(t, 0, n.stop(t))
	requireContains(t, n.stderr.String(), "no such group on this node", "group=9")
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}
