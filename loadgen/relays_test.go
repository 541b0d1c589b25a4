package loadgen

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/spectator/relay"
	"github.com/stretchr/testify/require"
)

// spectator-influx with relays: the spectators join the relays, which
// follow the node; the result tells the bytes the node sent the relays
// apart from what the relays sent the spectators.
func TestSpectatorInfluxOnRelays(t *testing.T) {
	addr := startNode(t)
	tg := &Target{Addrs: []string{addr}}
	var started []string
	relays := func(_ context.Context, upstreams []string) ([]string, func(), error) {
		started = upstreams
		cfg := relay.DefaultConfig()
		cfg.Upstream = "http://" + upstreams[0]
		r, err := relay.New(cfg)
		if err != nil {
			return nil, nil, err
		}
		ts := httptest.NewServer(r.Handler())
		return []string{ts.Listener.Addr().String()}, func() { r.Close(); ts.Close() }, nil
	}
	r, err := SpectatorInflux(context.Background(), tg, smallLoad("sr"), SpectatorParams{Spectators: 3, Ramp: 50 * time.Millisecond,
		DecodeEvery: 2, Linger: 10 * time.Millisecond, Relays: relays}, Timing{Duration: 400 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, []string{addr}, started)
	require.True(t, r.OK(), "%+v", r.Checks)
	require.Equal(t, 1, r.Params["relays"])
	require.EqualValues(t, 3, r.Figures["spectators_connected"])
	require.Positive(t, r.Latency["spectator"].Count, "spectators got events through the relay")
	require.Positive(t, r.Figures["voter_bytes_per_s_to_relays"])
	require.Greater(t, r.Figures["relay_bytes_per_s_to_spectators"], r.Figures["voter_bytes_per_s_to_relays"],
		"three spectators on one relay: the node sent one stream")

	_, err = SpectatorInflux(context.Background(), tg, smallLoad("sr2"), SpectatorParams{Spectators: 1,
		Relays: func(context.Context, []string) ([]string, func(), error) { return nil, nil, errors.New("no relay") }}, Timing{Duration: 100 * time.Millisecond})
	require.ErrorContains(t, err, "no relay")
}
