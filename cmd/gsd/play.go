package main

import (
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/spf13/pflag"
)

// playOptions are the WebSocket play fan-out flags (docs/PROTOCOL.md).
type playOptions struct {
	parsed   bool // flags registered: otherwise the defaults stand
	tick     time.Duration
	queue    int
	slow     time.Duration
	ack      time.Duration
	coalesce bool
	interest api.InterestConfig
}

func (p *playOptions) flags(f *pflag.FlagSet) {
	d := api.DefaultPlayConfig()
	p.parsed = true
	f.DurationVar(&p.tick, "play-tick", d.TickInterval, "how often each play connection's coalesced bulk changes are sent")
	f.IntVar(&p.queue, "play-queue", d.QueueSize, "critical frames (and control messages) queued per play connection")
	f.DurationVar(&p.slow, "play-slow-timeout", d.SlowTimeout, "how long a play connection's queue may stay full before it is closed 4429 slow_consumer")
	f.DurationVar(&p.ack, "play-ack-interval", d.AckInterval, "how often a play connection replicates its client's latest ack (one Raft command per connection per interval at most)")
	f.BoolVar(&p.coalesce, "play-coalesce", d.CoalesceBulk, "send applied bulk events as per-tick deltas (latest value per entity and field)")
	f.Float64Var(&p.interest.Cell, "play-interest-cell", 0, "interest grid cell size in position units (0: no grid; players receive every event)")
	f.StringVar(&p.interest.X, "play-interest-x", "x", "numeric field holding an entity's x position (with --play-interest-cell)")
	f.StringVar(&p.interest.Y, "play-interest-y", "y", "numeric field holding an entity's y position (with --play-interest-cell)")
	f.IntVar(&p.interest.Radius, "play-interest-radius", 1, "cells around the player's own that count as near")
	f.StringVar(&p.interest.Team, "play-interest-team", "", "string field naming an entity's team: players also receive their team's events (empty: off)")
}

// set sets c from the flags (complete has checked them).
func (p *playOptions) set(c *api.PlayConfig) {
	if !p.parsed {
		return
	}
	c.TickInterval, c.QueueSize, c.SlowTimeout, c.CoalesceBulk, c.AckInterval = p.tick, p.queue, p.slow, p.coalesce, p.ack
	c.Interest = p.interest
}

// check validates the play config the flags make.
func (p *playOptions) check() error {
	c := api.DefaultPlayConfig()
	p.set(&c)
	if err := c.Validate(); err != nil {
		return usageError{fmt.Errorf("--play-* flags: %w", err)}
	}
	return nil
}
