package feed_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/internal/sinktest"
	"github.com/stretchr/testify/require"
)

func TestFollowerHooksSeeEveryFollowedWorldOnEachCheck(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("a", 3, 1000)
	src.Add("b", 5, 1000)
	var mu sync.Mutex
	seqs := map[string]uint64{}
	followed := -1
	f, err := feed.NewFollower(testConfig(), src, feed.Hooks[*target]{
		Start: func(world string) *target { return &target{world: world} },
		Fail:  func(string, *target, error, time.Duration) {},
		Check: func(world string, tg *target, w fsm.WorldInfo) {
			mu.Lock()
			defer mu.Unlock()
			if tg.world == world {
				seqs[world] = w.Seq
			}
		},
		Followed: func(n int) { mu.Lock(); followed = n; mu.Unlock() },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.Run(ctx) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return followed == 2 && seqs["a"] == 3 && seqs["b"] == 5
	}, 10*time.Second, time.Millisecond)
	cancel()
	<-done
	require.Zero(t, followed, "nothing is followed once Run returned")
}

func TestFollowConfigValidateAndNewFollowerRefuseWhatCannotWork(t *testing.T) {
	ok := testConfig()
	require.NoError(t, ok.Validate())
	for name, tc := range map[string]struct {
		edit func(*feed.FollowConfig)
		want string
	}{
		"negative batch":  {func(c *feed.FollowConfig) { c.BatchSize = -1 }, "batch size"},
		"negative linger": {func(c *feed.FollowConfig) { c.Linger = -1 }, "linger"},
		"no interval":     {func(c *feed.FollowConfig) { c.CheckInterval = 0 }, "check interval"},
		"no retry":        {func(c *feed.FollowConfig) { c.RetryMin = 0 }, "RetryMin"},
		"retry order":     {func(c *feed.FollowConfig) { c.RetryMax = c.RetryMin / 2 }, "RetryMin"},
		"no logger":       {func(c *feed.FollowConfig) { c.Logger = nil }, "Logger"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
			_, err := feed.NewFollower(c, sinktest.NewSource(), feed.Hooks[*target]{})
			require.ErrorContains(t, err, tc.want)
		})
	}
	hooks := feed.Hooks[*target]{Start: func(string) *target { return nil }, Fail: func(string, *target, error, time.Duration) {}}
	_, err := feed.NewFollower(ok, nil, hooks)
	require.ErrorContains(t, err, "no source")
	_, err = feed.NewFollower(ok, sinktest.NewSource(), feed.Hooks[*target]{Start: hooks.Start})
	require.ErrorContains(t, err, "required")
	_, err = feed.NewFollower(ok, sinktest.NewSource(), hooks)
	require.NoError(t, err)
}

func TestBackoffDoublesUpToItsBoundAndResets(t *testing.T) {
	b := feed.NewBackoff(time.Microsecond, 4*time.Microsecond)
	var waits []time.Duration
	for range 4 {
		waits = append(waits, b.Wait())
		require.True(t, b.Sleep(context.Background()))
	}
	require.Equal(t, []time.Duration{time.Microsecond, 2 * time.Microsecond, 4 * time.Microsecond, 4 * time.Microsecond}, waits)
	b.Reset()
	require.Equal(t, time.Microsecond, b.Wait())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long := feed.NewBackoff(time.Hour, time.Hour)
	require.False(t, long.Sleep(ctx), "a sleep ends with its context")
}
