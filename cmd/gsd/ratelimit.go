package main

import (
	"errors"
	"math"

	"github.com/gsd-dev/gsd/api"
	"github.com/spf13/pflag"
)

// rateLimitOptions are the edge's per-player rate limit flags
// (api/edge/ratelimit.go); with no rate the limit stays off.
type rateLimitOptions struct {
	rate  float64
	burst int
}

func (o *rateLimitOptions) flags(f *pflag.FlagSet) {
	f.Float64Var(&o.rate, "player-rate", 0, "actions per second each player may send through this node, refused 429 rate_limited before the log beyond it (0: no limit)")
	f.IntVar(&o.burst, "player-burst", 0, "actions a player may send at once above --player-rate (default: the rate rounded up, at least 1)")
}

// check validates the flags.
func (o *rateLimitOptions) check() error {
	switch {
	case o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0):
		return errors.New("--player-rate must be a number >= 0")
	case o.burst < 0:
		return errors.New("--player-burst must not be negative")
	case o.burst > 0 && o.rate == 0:
		return errors.New("--player-burst needs --player-rate")
	}
	return nil
}

// set sets c's limit from the flags (check has passed).
func (o *rateLimitOptions) set(c *api.Config) {
	c.PlayerRate, c.PlayerBurst = o.rate, o.burst
	if o.rate > 0 && o.burst == 0 {
		c.PlayerBurst = max(1, int(math.Ceil(o.rate)))
	}
}
