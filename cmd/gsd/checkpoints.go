package main

import (
	"fmt"
	"time"

	"github.com/gsd-dev/gsd/store"
	"github.com/spf13/pflag"
)

// Hash checkpoints (issue 12, store/checkpoint.go): the leader proposes
// its state hash of each changed world every interval, and every replica
// compares it with its own; a replica that differs counts it
// (gsd_checkpoint_mismatches_total) and logs an error naming itself, the
// world, the index and both hashes. Off by default: each checkpoint is a
// log entry.

// checkpointOptions are the hash checkpoints' flags.
type checkpointOptions struct {
	interval time.Duration
	heal     bool // heal.go
}

func (c *checkpointOptions) flags(f *pflag.FlagSet) {
	f.BoolVar(&c.heal, "checkpoint-heal", false, "as leader, remove a voter whose checkpoint mismatch leaves it in the minority, order it to move its data aside and restart empty, and add it again (needs --checkpoint-interval and a supervisor that restarts gsd on exit code 75)")
	f.DurationVar(&c.interval, "checkpoint-interval", 0, "how often the leader proposes hash checkpoints of the worlds that changed, so that a replica whose state differs from the leader's is named within an interval (0: off)")
}

func (c *checkpointOptions) check() error {
	if c.interval < 0 {
		return fmt.Errorf("--checkpoint-interval must be 0 (off) or positive, got %s", c.interval)
	}
	if c.heal && c.interval == 0 {
		return fmt.Errorf("--checkpoint-heal needs --checkpoint-interval: without checkpoints no replica is ever found to differ")
	}
	return nil
}

// apply sets the store's checkpoint config.
func (c *checkpointOptions) apply(cfg *store.Config) { cfg.CheckpointInterval = c.interval }
