package main

import (
	"fmt"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/api/watch"
	"github.com/spf13/pflag"
)

// watchOptions are the flags of the watch route's HTTP segments
// (api/watch/segments.go, docs/PROTOCOL.md "Watching over HTTP").
type watchOptions struct {
	cfg watch.SegmentConfig
}

func (o *watchOptions) flags(f *pflag.FlagSet) {
	d := watch.DefaultSegmentConfig()
	f.DurationVar(&o.cfg.Duration, "watch-segment", d.Duration, "how much time one segment of the HTTP watch route covers (at least 10ms)")
	f.IntVar(&o.cfg.Keep, "watch-segments-kept", d.Keep, "finished watch segments kept per world, view and delay (at least 1)")
	f.DurationVar(&o.cfg.Idle, "watch-segment-idle", d.Idle, "how long a world's view is cut into watch segments after its last request (at least one segment)")
	f.IntVar(&o.cfg.Max, "watch-segment-views", d.Max, "how many views of worlds (view and delay) this node cuts into watch segments at once; more are refused 503 (at least 1)")
}

// check validates the flags; a zero config (options made without the
// flags) is the defaults, as api.Config.Watch takes it.
func (o *watchOptions) check() error {
	if o.cfg == (watch.SegmentConfig{}) {
		return nil
	}
	if err := o.cfg.Validate(); err != nil {
		return fmt.Errorf("--watch-segment, --watch-segments-kept, --watch-segment-idle, --watch-segment-views: %w", err)
	}
	return nil
}

// set sets c's segment config from the flags (check has passed).
func (o *watchOptions) set(c *api.Config) { c.Watch = o.cfg }
