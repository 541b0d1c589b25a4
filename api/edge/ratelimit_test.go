package edge

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestPlayerLimiterLetsABurstThroughThenRefillsAtTheRate(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := newPlayerLimiter(2, 3, c.now) // 2/s, bursts of 3
	for range 3 {
		ok, _ := l.allow("ann")
		require.True(t, ok)
	}
	ok, wait := l.allow("ann")
	require.False(t, ok)
	require.Equal(t, 500*time.Millisecond, wait, "one token comes back every 1/rate")
	ok, _ = l.allow("bob")
	require.True(t, ok, "each player has a bucket of its own")
	c.t = c.t.Add(500 * time.Millisecond)
	ok, _ = l.allow("ann")
	require.True(t, ok)
	ok, _ = l.allow("ann")
	require.False(t, ok, "a refused action took no token: one refilled, one spent")
}

func TestPlayerLimiterDropsRefilledBucketsWhenItGrows(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := newPlayerLimiter(1, 1, c.now)
	for i := range sweepFloor {
		l.allow(fmt.Sprint("p", i))
	}
	require.Equal(t, sweepFloor, l.players())
	c.t = c.t.Add(time.Second) // every bucket full again
	ok, _ := l.allow("p0")     // known: no sweep
	require.True(t, ok)
	l.allow("new") // the map is at the floor: a sweep first
	require.Equal(t, 2, l.players(), "p0 (just spent) and new are left")
	require.Equal(t, sweepFloor, l.sweepAt)
}

func TestRateLimitErrorsAre429WithTheirWait(t *testing.T) {
	err := fmt.Errorf("action: %w", &RateLimitError{Player: "ann", Wait: 2500 * time.Millisecond})
	require.ErrorIs(t, err, ErrRateLimited)
	status, code := Classify(err, true)
	require.Equal(t, 429, status)
	require.Equal(t, CodeRateLimited, code)
	require.Contains(t, err.Error(), "ann")
	require.Equal(t, "3", retryAfter(err))
	require.Equal(t, "1", retryAfter(&RateLimitError{Wait: time.Millisecond}))
	require.Equal(t, "1", retryAfter(errors.New("other")))
}

func TestAdmitCountsRefusalsAndLetsForwardedActionsPass(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	c := &clock{t: time.Unix(1000, 0)}
	s := &Core{metrics: m, limiter: newPlayerLimiter(1, 1, c.now)}
	require.NoError(t, s.Admit(nil, "ann", "play"))
	require.ErrorIs(t, s.Admit(nil, "ann", "play"), ErrRateLimited)
	fwd := httptest.NewRequest("POST", "/internal/v1/worlds/arena/actions", nil)
	fwd.Header.Set(HeaderForwarded, "1")
	require.NoError(t, s.Admit(fwd, "ann", "http"), "the forwarding node admitted it")
	require.Equal(t, 1.0, testutil.ToFloat64(m.RateLimited.WithLabelValues("play")))
	require.NoError(t, (&Core{}).Admit(nil, "ann", "http"), "no limit set")
}

func TestRateLimitConfigIsChecked(t *testing.T) {
	for _, bad := range []struct {
		rate  float64
		burst int
	}{{-1, 1}, {1, 0}} {
		cfg := DefaultConfig()
		cfg.PlayerRate, cfg.PlayerBurst = bad.rate, bad.burst
		require.Error(t, cfg.Validate(), "%v", bad)
	}
	cfg := DefaultConfig()
	cfg.PlayerRate, cfg.PlayerBurst = 10, 20
	require.NoError(t, cfg.Validate())
}
