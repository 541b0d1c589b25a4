package main

import (
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/api/watch"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

func TestWatchSegmentFlagsSetTheEdgesConfig(t *testing.T) {
	var o watchOptions
	f := pflag.NewFlagSet("gsd", pflag.ContinueOnError)
	o.flags(f)
	require.NoError(t, f.Parse(nil))
	require.NoError(t, o.check())
	require.Equal(t, watch.DefaultSegmentConfig(), o.cfg)

	require.NoError(t, f.Parse([]string{"--watch-segment=4s", "--watch-segments-kept=5", "--watch-segment-idle=1m", "--watch-segment-views=7"}))
	require.NoError(t, o.check())
	cfg := api.DefaultConfig()
	o.set(&cfg)
	require.Equal(t, watch.SegmentConfig{Duration: 4 * time.Second, Keep: 5, Idle: time.Minute, Max: 7}, cfg.Watch)
	require.NoError(t, cfg.Validate())

	for _, args := range [][]string{{"--watch-segment=1ms"}, {"--watch-segments-kept=0"}, {"--watch-segment-idle=1s"}, {"--watch-segment-views=0"}} {
		var o watchOptions
		f := pflag.NewFlagSet("gsd", pflag.ContinueOnError)
		o.flags(f)
		require.NoError(t, f.Parse(args))
		require.ErrorContains(t, o.check(), "--watch-segment", "%v", args)
		cfg := api.DefaultConfig()
		o.set(&cfg)
		require.ErrorContains(t, cfg.Validate(), "config.Watch", "%v", args)
	}
}
