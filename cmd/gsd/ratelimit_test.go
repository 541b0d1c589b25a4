package main

import (
	"math"
	"testing"

	"github.com/gsd-dev/gsd/api"
	"github.com/stretchr/testify/require"
)

func TestPlayerRateFlagsSetTheEdgesLimit(t *testing.T) {
	for _, c := range []struct {
		o          rateLimitOptions
		rate       float64
		burst      int
		wantErrMsg string
	}{
		{rateLimitOptions{}, 0, 0, ""},
		{rateLimitOptions{rate: 2.5}, 2.5, 3, ""},
		{rateLimitOptions{rate: 0.1}, 0.1, 1, ""},
		{rateLimitOptions{rate: 5, burst: 20}, 5, 20, ""},
		{rateLimitOptions{rate: -1}, 0, 0, "--player-rate"},
		{rateLimitOptions{rate: math.Inf(1)}, 0, 0, "--player-rate"},
		{rateLimitOptions{rate: 1, burst: -1}, 0, 0, "--player-burst"},
		{rateLimitOptions{burst: 3}, 0, 0, "needs --player-rate"},
	} {
		err := c.o.check()
		if c.wantErrMsg != "" {
			require.ErrorContains(t, err, c.wantErrMsg)
			continue
		}
		require.NoError(t, err)
		cfg := api.DefaultConfig()
		c.o.set(&cfg)
		require.Equal(t, c.rate, cfg.PlayerRate)
		require.Equal(t, c.burst, cfg.PlayerBurst)
		require.NoError(t, cfg.Validate())
	}
}
