package api

import (
	"testing"

	"github.com/gsd-dev/gsd/spectator/registry"
	"github.com/stretchr/testify/require"
)

// A follower sends the registry's writes to the leader, which creates
// the registry world on the first one.
func TestFollowerForwardsRelayRegistryWrites(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t)
	code, m := follower.DoJSON("POST", "/v1/relays", `{"id":"eu-1","url":"http://eu-1.example:7080","capacity":10,"live":true}`)
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, "eu-1", m["id"])
	require.NotZero(t, m["heartbeat_ms"])
	require.Equal(t, 1, leader.Fake.Forwarded)
	require.Equal(t, 1, leader.Fake.Acts)
	require.Zero(t, follower.Fake.Acts)
	require.Equal(t, registry.World, leader.Fake.LastAction.World)
	_, err := leader.Fake.World(registry.World)
	require.NoError(t, err, "created on the leader")

	code, _, b := follower.Do("DELETE", "/v1/relays/eu-1", "")
	require.Equal(t, 204, code, "%s", b)
	require.Equal(t, 2, leader.Fake.Forwarded)
	require.Equal(t, 2, leader.Fake.Acts)
	follower.RequireError(400, "malformed", "POST", "/v1/relays", `{"id":"x"}`)
	require.Equal(t, 2, leader.Fake.Forwarded, "bad input is refused before forwarding")
}
