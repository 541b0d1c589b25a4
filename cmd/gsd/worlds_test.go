package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// fakeWorldExpirer is a store whose idle worlds the test sets.
type fakeWorldExpirer struct {
	leader bool
	gone   []fsm.WorldInfo
	err    error
	calls  chan struct{}
}

func (f *fakeWorldExpirer) IsLeader() bool { return f.leader }
func (f *fakeWorldExpirer) ExpireIdleWorlds(context.Context) ([]fsm.WorldInfo, error) {
	if f.calls != nil {
		f.calls <- struct{}{}
	}
	return f.gone, f.err
}

func TestExpireWorldsOnceDeletesOnlyOnTheLeader(t *testing.T) {
	f := &fakeWorldExpirer{gone: []fsm.WorldInfo{{ID: "a", Incarnation: 3}}}
	require.Zero(t, expireWorldsOnce(context.Background(), f, quietLog()), "a follower proposes nothing")
	f.leader = true
	require.Equal(t, 1, expireWorldsOnce(context.Background(), f, quietLog()))
	for _, err := range []error{fmt.Errorf("%w: voter n2", store.ErrVersionGate), errors.New("boom")} {
		f.gone, f.err = nil, err
		require.Zero(t, expireWorldsOnce(context.Background(), f, quietLog()))
	}
}

func TestWorldExpiryLoopRunsUntilStopped(t *testing.T) {
	f := &fakeWorldExpirer{leader: true, calls: make(chan struct{})}
	stores := func() []worldExpirer { return []worldExpirer{f} }
	off := (&worldExpiryOptions{}).start(stores, quietLog())
	off()
	o := &worldExpiryOptions{every: time.Millisecond}
	stop := o.start(stores, quietLog())
	<-f.calls
	<-f.calls
	go func() {
		for range f.calls {
		}
	}()
	stop()
	stop() // idempotent
	close(f.calls)
}

func TestWorldExpiryCheckBounds(t *testing.T) {
	require.NoError(t, (&worldExpiryOptions{}).check())
	require.NoError(t, (&worldExpiryOptions{every: time.Minute}).check())
	require.Error(t, (&worldExpiryOptions{every: -time.Second}).check())
	require.Error(t, (&worldExpiryOptions{every: 2 * time.Hour}).check())
}
