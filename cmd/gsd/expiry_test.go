package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// fakeExpirer is a store with worlds whose idleness the test sets.
type fakeExpirer struct {
	leader  bool
	idle    map[string]bool
	errs    map[string]error
	calls   chan string // worlds ExpireSessions was asked for
	expired []string
}

func (f *fakeExpirer) IsLeader() bool { return f.leader }
func (f *fakeExpirer) Worlds() []fsm.WorldInfo {
	return []fsm.WorldInfo{{ID: "a"}, {ID: "b"}, {ID: "c"}}
}
func (f *fakeExpirer) IdleSessions(w string, _ time.Duration) bool { return f.idle[w] }
func (f *fakeExpirer) ExpireSessions(_ context.Context, w string, _ time.Duration) ([]fsm.SessionInfo, error) {
	if f.calls != nil {
		f.calls <- w
	}
	f.expired = append(f.expired, w)
	if err := f.errs[w]; err != nil {
		return nil, err
	}
	return []fsm.SessionInfo{{World: w, ID: "s-" + w}}, nil
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestExpireOnceProposesOnlyForWorldsWithIdleSessionsOnTheLeader(t *testing.T) {
	f := &fakeExpirer{idle: map[string]bool{"a": true, "c": true}}
	require.Zero(t, expireOnce(context.Background(), f, time.Minute, quietLog()))
	require.Empty(t, f.expired, "a follower proposes nothing")

	f.leader = true
	require.Equal(t, 2, expireOnce(context.Background(), f, time.Minute, quietLog()))
	require.Equal(t, []string{"a", "c"}, f.expired)
}

func TestExpireOnceSkipsAFailedWorldAndStopsAtTheVersionGate(t *testing.T) {
	f := &fakeExpirer{leader: true, idle: map[string]bool{"a": true, "b": true, "c": true},
		errs: map[string]error{"a": errors.New("boom")}}
	require.Equal(t, 2, expireOnce(context.Background(), f, time.Minute, quietLog()))
	require.Equal(t, []string{"a", "b", "c"}, f.expired)

	f.expired = nil
	f.errs = map[string]error{"b": fmt.Errorf("%w: voter n2", store.ErrVersionGate)}
	require.Equal(t, 1, expireOnce(context.Background(), f, time.Minute, quietLog()))
	require.Equal(t, []string{"a", "b"}, f.expired, "no voter reads it: the other worlds wait too")
}

func TestExpiryLoopRunsUntilStopped(t *testing.T) {
	f := &fakeExpirer{leader: true, idle: map[string]bool{"b": true}, calls: make(chan string, 1)}
	e := expiryOptions{after: time.Second}
	stop := e.start(f, quietLog())
	select {
	case w := <-f.calls:
		require.Equal(t, "b", w)
	case <-time.After(30 * time.Second):
		t.Fatal("the loop never proposed an expiry")
	}
	stop()
	stop() // idempotent
	(&expiryOptions{}).start(f, quietLog())()
}

func TestSessionExpiryFlagBoundsAndInterval(t *testing.T) {
	for _, tc := range []struct {
		after time.Duration
		ok    bool
		every time.Duration
	}{
		{0, true, time.Second},
		{2 * time.Second, true, time.Second},
		{8 * time.Minute, true, time.Minute},
		{40 * time.Second, true, 10 * time.Second},
		{-time.Second, false, 0},
		{fsm.MaxSessionExpiry + 1, false, 0},
	} {
		e := expiryOptions{after: tc.after}
		if !tc.ok {
			require.Error(t, e.check(), "%s", tc.after)
			continue
		}
		require.NoError(t, e.check(), "%s", tc.after)
		require.Equal(t, tc.every, e.interval(), "%s", tc.after)
		require.Equal(t, tc.after/3, e.keepalive(), "%s", tc.after)
	}
}
