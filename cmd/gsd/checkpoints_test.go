package main

import (
	"testing"
	"time"

	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

func TestCheckpointIntervalFlagSetsTheStoreConfigAndRefusesNegative(t *testing.T) {
	fs := rootFlags(t, "--checkpoint-interval", "5s")
	require.Equal(t, "5s", get(t, fs, "checkpoint-interval"))

	c := checkpointOptions{interval: 5 * time.Second}
	require.NoError(t, c.check())
	var cfg store.Config
	c.apply(&cfg)
	require.Equal(t, 5*time.Second, cfg.CheckpointInterval)

	require.NoError(t, (&checkpointOptions{}).check(), "0 is off")
	require.ErrorContains(t, (&checkpointOptions{interval: -time.Second}).check(), "--checkpoint-interval")
}
