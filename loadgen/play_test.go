package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The play scenario against a real in-process node: results come back
// with no failures. No duration or throughput assertions.
func TestPlayBattle(t *testing.T) {
	addr := startNode(t)
	ctx := context.Background()
	p := smallLoad("play1")
	p.Players, p.Rate = 4, 200
	r, err := PlayBattle(ctx, &Target{Addrs: []string{addr}}, p, Timing{Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, "play", r.Scenario)
	require.Equal(t, "client (WebSocket play)", r.Level)
	require.Positive(t, r.Counts["sent"])
	require.Positive(t, r.Counts["applied"])
	require.Zero(t, r.Counts["failed"], "%v", r.Errors)
	require.Positive(t, r.Latency["action_commit"].Count)
	require.Positive(t, r.Latency["propagation"].Count)
	require.Positive(t, r.Counts["delivered_events"])
	require.True(t, r.OK(), "%+v", r.Checks)

	p.Players = MaxPlayPlayers + 1
	_, err = PlayBattle(ctx, &Target{Addrs: []string{addr}}, p, Timing{Duration: time.Millisecond})
	require.Error(t, err)
}
