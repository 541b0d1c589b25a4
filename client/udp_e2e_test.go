package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func posRules() wire.Rules {
	return wire.Rules{Fields: map[string]wire.FieldRule{
		"x": {Type: "int", Policy: wire.PolicyAuthoritative},
		"y": {Type: "float", Policy: wire.PolicyAuthoritative},
	}}
}

// nextEvent returns the next event of p.
func nextEvent(t *testing.T, p *client.Play) wire.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ev, err := p.Next(ctx)
	require.NoError(t, err)
	return ev
}

func TestUDPInputReachesARealServerAsThePlayersLatestValue(t *testing.T) {
	forEachEncoding(t, testUDPInputReachesARealServerAsThePlayersLatestValue)
}

func testUDPInputReachesARealServerAsThePlayersLatestValue(t *testing.T, enc string) {
	addr := testnode.StartUDP(t)
	c := client.New([]string{addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", posRules()))
	p, err := c.Play(ctx, "arena", client.PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	require.NotNil(t, p.UDP())

	u, err := p.UDPInput(client.UDPOptions{})
	require.NoError(t, err)
	defer u.Close()
	seq, err := u.Send(client.Input{Entity: "ann", Field: "x", Value: wire.Int(3)}, client.Input{Entity: "ann", Field: "y", Value: wire.Float(0.5)})
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	// The play connection gets the bulk input coalesced, as a delta.
	ev := nextEvent(t, p)
	require.Equal(t, client.DeltaStatus, ev.Status)
	require.Equal(t, "bulk", ev.Priority)
	require.Len(t, ev.Changes, 2)
	require.Equal(t, "x", ev.Changes[0].Field)
	require.Equal(t, wire.Int(3), *ev.Changes[0].Value)
	// The committed event itself is the session's player's bulk action.
	s, err := c.Events(ctx, "arena", 1)
	require.NoError(t, err)
	ev, err = s.Next()
	require.NoError(t, err)
	s.Close()
	require.Equal(t, "ann", ev.Player)
	require.Equal(t, "bulk", ev.Priority)
	require.Equal(t, "applied", ev.Status)
	require.Equal(t, uint64(1), ev.ClientSeq)
	require.Len(t, ev.Changes, 2)

	// A burst: whatever coalesces, the last value stands.
	for i := int64(1); i <= 50; i++ {
		_, err := u.SendInput("ann", "x", wire.Int(100+i))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		e, err := c.Entity(ctx, "arena", "ann", client.Stale)
		x, _ := e.Int("x")
		return err == nil && x == 150
	}, 20*time.Second, 5*time.Millisecond)

	// After a drop the Play resumes with a new key, and the sender follows.
	old := p.UDP().KeyID
	p.Drop()
	require.Eventually(t, func() bool {
		info := p.UDP()
		return info != nil && info.KeyID != old
	}, 20*time.Second, 5*time.Millisecond)
	_, err = u.SendInput("ann", "x", wire.Int(7))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		e, err := c.Entity(ctx, "arena", "ann", client.Stale)
		x, _ := e.Int("x")
		return err == nil && x == 7
	}, 20*time.Second, 5*time.Millisecond)
}

func TestUDPInputOnAServerWithoutTheLaneIsErrNoUDP(t *testing.T) {
	forEachEncoding(t, testUDPInputOnAServerWithoutTheLaneIsErrNoUDP)
}

func testUDPInputOnAServerWithoutTheLaneIsErrNoUDP(t *testing.T, enc string) {
	addr := testnode.Start(t)
	c := client.New([]string{addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", posRules()))
	p, err := c.Play(ctx, "arena", client.PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	require.Nil(t, p.UDP())
	_, err = p.UDPInput(client.UDPOptions{})
	require.ErrorIs(t, err, client.ErrNoUDP)
}

// forEachEncoding runs test once per play encoding.
func forEachEncoding(t *testing.T, test func(*testing.T, string)) {
	for _, enc := range []string{client.EncodingJSON, client.EncodingMsgpack} {
		t.Run(enc, func(t *testing.T) { test(t, enc) })
	}
}

// A declared action sent over UDP is applied as the session's player's
// bulk action, validated by the world's rules: a call that breaks a
// precondition is rejected with its name.
func TestUDPInputSendsDeclaredActionsThatTheRulesValidate(t *testing.T) {
	addr := testnode.StartUDP(t)
	c := client.New([]string{addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rules := posRules()
	rules.Actions = map[string]wire.ActionRule{"move": {
		Params: map[string]string{"x": "int", "y": "float"},
		Pre:    []wire.Precondition{{Name: "in_bounds", Expr: "params.x >= 0"}},
		Effects: []wire.EffectRule{{Op: "set", Entity: "caller.id", Field: "x", Value: "params.x"},
			{Op: "set", Entity: "caller.id", Field: "y", Value: "params.y"}},
	}}
	require.NoError(t, c.CreateWorld(ctx, "arena", rules))
	p, err := c.Play(ctx, "arena", client.PlayOptions{Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	u, err := p.UDPInput(client.UDPOptions{})
	require.NoError(t, err)
	defer u.Close()

	seq, err := u.SendAction("move", map[string]wire.Value{"x": wire.Int(4), "y": wire.Float(1.5)})
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	s, err := c.Events(ctx, "arena", 1)
	require.NoError(t, err)
	defer s.Close()
	ev, err := s.Next()
	require.NoError(t, err)
	require.Equal(t, "ann", ev.Player)
	require.Equal(t, "applied", ev.Status)
	require.Equal(t, uint64(1), ev.ClientSeq)
	// Sent after the first committed: calls of one action not yet
	// proposed coalesce to the newest.
	_, err = u.SendAction("move", map[string]wire.Value{"x": wire.Int(-1), "y": wire.Int(0)})
	require.NoError(t, err)
	ev, err = s.Next()
	require.NoError(t, err)
	require.Equal(t, "rejected", ev.Status)
	require.Equal(t, "in_bounds", ev.Reason)
	e, err := c.Entity(ctx, "arena", "ann", client.Stale)
	require.NoError(t, err)
	x, _ := e.Int("x")
	require.Equal(t, int64(4), x)
}
