package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestRunWithUDPAddrServesTheUDPInputLane(t *testing.T) {
	t.Parallel()
	n := startNode(t, "solo", t.TempDir(), "--udp-addr", "127.0.0.1:0")
	n.waitLeader(t)
	requireContains(t, n.stderr.String(), "udp input lane listening")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	p, err := c.Play(ctx, "arena", client.PlayOptions{Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	u, err := p.UDPInput(client.UDPOptions{})
	require.NoError(t, err)
	defer u.Close()
	_, err = u.SendInput("ann", "x", wire.Int(42))
	require.NoError(t, err)
	// The input comes back coalesced, as the play connection's delta.
	ev, err := p.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, client.DeltaStatus, ev.Status)
	require.Equal(t, "bulk", ev.Priority)
	require.Len(t, ev.Changes, 1)
	require.Equal(t, wire.Int(42), *ev.Changes[0].Value)
}

func TestRunWithoutUDPAddrOffersNoLaneAndABadOneFails(t *testing.T) {
	t.Parallel()
	n := startNode(t, "solo", t.TempDir())
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	p, err := c.Play(ctx, "arena", client.PlayOptions{Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	require.Nil(t, p.UDP())

	// A port someone else holds.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	bad := startNode(t, "bad", t.TempDir(), "--udp-addr", pc.LocalAddr().String())
	require.Equal(t, 1, bad.exited(t))
	requireContains(t, bad.stderr.String(), "udp lane")
}
