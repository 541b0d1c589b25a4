package main

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// TestSessionExpiryClosesVanishedSessionsAndKeepsConnectedOnes runs gsd
// with --session-expiry: a session whose client vanished without a bye
// expires, while a connected client in a world where nothing happens keeps
// its session through the node's keepalives.
func TestSessionExpiryClosesVanishedSessionsAndKeepsConnectedOnes(t *testing.T) {
	t.Parallel()
	const expiry = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startNode(t, "exp", t.TempDir(), "--session-expiry", expiry.String())
	n.waitLeader(t)
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))

	stay, err := c.Play(ctx, "arena", client.PlayOptions{Player: "bob"})
	require.NoError(t, err)
	defer stay.Close()
	stayID, _ := stay.Session()

	// ann's client says hello and vanishes: no bye.
	ws, _, err := websocket.Dial(ctx, "ws://"+n.http+"/v1/worlds/arena/play", &websocket.DialOptions{Subprotocols: []string{"gsd.json.v1"}})
	require.NoError(t, err)
	require.NoError(t, wsjson.Write(ctx, ws, wire.ClientMsg{Type: wire.TypeHello, Player: "ann"}))
	var welcome wire.Welcome
	require.NoError(t, wsjson.Read(ctx, ws, &welcome))
	require.NotEmpty(t, welcome.Session)
	opened := time.Now()
	require.NoError(t, ws.CloseNow())

	players := func() map[string]string {
		ss, err := c.Sessions(ctx, "arena")
		require.NoError(t, err)
		out := map[string]string{}
		for _, s := range ss {
			out[s.Player] = s.ID
		}
		return out
	}
	require.Equal(t, map[string]string{"ann": welcome.Session, "bob": stayID}, players(), "a session outlives its connection")
	require.Eventually(t, func() bool { _, ok := players()["ann"]; return !ok }, 30*time.Second, 50*time.Millisecond, "the vanished session expires")
	require.Greater(t, time.Since(opened), expiry, "not before the expiry")
	require.Equal(t, map[string]string{"bob": stayID}, players(), "the connected player's session stays")
}
