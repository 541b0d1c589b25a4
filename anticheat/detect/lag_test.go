package detect

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// lagging is a source that lists an older state of its worlds, as a
// restarted node's groups do until they replayed their log: the worlds
// in hidden are not listed, those in seq at that seq. A Settler when
// settler is set (settled when nothing lags).
type lagging struct {
	*source
	mu     sync.Mutex
	hidden map[string]bool
	seq    map[string]uint64
	scans  int // Worlds (and Settled) calls
}

func (l *lagging) Worlds() []fsm.WorldInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.scans++
	var out []fsm.WorldInfo
	for _, w := range l.source.Worlds() {
		if l.hidden[w.ID] {
			continue
		}
		if s, ok := l.seq[w.ID]; ok {
			w.Seq = s
		}
		out = append(out, w)
	}
	return out
}

// settle ends the lag: every world listed as it is.
func (l *lagging) settle() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hidden, l.seq = nil, nil
}

func (l *lagging) scanned() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.scans
}

type settlingSource struct{ *lagging }

func (s settlingSource) Settled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scans++ // a Runner that waits looks here instead of scanning
	return len(s.hidden) == 0 && len(s.seq) == 0
}

// A Runner restarted over a source that lags (a world created since the
// group's snapshot missing for a while, then listed at an older seq, then
// as it is) counts every event once: a world missing is not one deleted,
// a lower seq of the same incarnation not one created again. With a
// Settler it waits for it before its first scan; without, its followers
// go on from the checkpoint's marks. (Before the fix each lagging scan
// started the world again from seq 1: 8 transfers seen instead of 4.)
func TestARunnerRestartedOverALaggingSourceCountsNothingTwice(t *testing.T) {
	for _, settler := range []bool{false, true} {
		t.Run(map[bool]string{false: "no settler", true: "a settler"}[settler], func(t *testing.T) {
			cp := &memCheckpoints{}
			src := newSource("old", "new")
			src.inc["old"], src.inc["new"] = 3, 4
			src.noInc = settler // a Settler covers worlds made before incarnations too
			src.transfers("old", "f", "m", 2)
			src.transfers("new", "g", "n", 2)
			var log bytes.Buffer
			runFor(t, fast1(), src, cp, &log, func(r *Runner) bool { return markOf(r, "old") == 3 && markOf(r, "new") == 3 })

			l := &lagging{source: src, hidden: map[string]bool{"new": true}, seq: map[string]uint64{"old": 1}}
			var lag Source = l
			if settler {
				lag = settlingSource{l}
			}
			src.transfers("old", "f", "m", 2)
			src.transfers("new", "g", "n", 2)
			d, err := New(fast1())
			require.NoError(t, err)
			r, err := NewRunner(d, lag, &Memory{}, slog.New(slog.NewTextHandler(&log, nil)))
			require.NoError(t, err)
			r.Checkpoints = cp
			r.Metrics, err = NewMetrics(prometheus.NewRegistry())
			require.NoError(t, err)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			done := make(chan struct{})
			go func() { defer close(done); r.Run(ctx) }()
			require.Eventually(t, func() bool { return l.scanned() >= 3 }, 10*time.Second, time.Millisecond)
			l.mu.Lock()
			delete(l.hidden, "new")
			l.seq["new"] = 1 // back, at an older seq
			l.mu.Unlock()
			scans := l.scanned()
			require.Eventually(t, func() bool { return l.scanned() >= scans+3 }, 10*time.Second, time.Millisecond)
			l.settle()
			require.Eventually(t, func() bool { return markOf(r, "old") == 5 && markOf(r, "new") == 5 }, 10*time.Second, time.Millisecond)
			scans = l.scanned()
			require.Eventually(t, func() bool { return l.scanned() >= scans+3 }, 10*time.Second, time.Millisecond)
			stop()
			<-done
			require.Equal(t, 4, transfersSeen(r, "f", "m"), "every transfer of the world in the snapshot once")
			require.Equal(t, 4, transfersSeen(r, "g", "n"), "every transfer of the world created since once")
			require.Equal(t, 4.0, testutil.ToFloat64(r.Metrics.observed), "only the events since the checkpoint observed")
			if settler {
				require.Contains(t, log.String(), "wait for this node's groups")
			}
		})
	}
}

// A world that leaves this node's list (its group moved off the node)
// and comes back, the same incarnation, is followed from where its
// follower was, its counts kept: nothing counts twice. (Before the fix
// it was followed from seq 1 again: 6 transfers seen instead of 4.)
func TestAWorldThatLeavesAndComesBackIsFollowedFromWhereItWas(t *testing.T) {
	src := newSource("w")
	src.inc["w"] = 9
	src.transfers("w", "f", "m", 2)
	l := &lagging{source: src}
	var log bytes.Buffer
	r, _, stop := running(t, l, &log)
	require.Eventually(t, func() bool { return markOf(r, "w") == 3 }, 10*time.Second, time.Millisecond)
	l.mu.Lock()
	l.hidden = map[string]bool{"w": true}
	l.mu.Unlock()
	scans := l.scanned()
	require.Eventually(t, func() bool { return l.scanned() >= scans+3 }, 10*time.Second, time.Millisecond)
	src.transfers("w", "f", "m", 2)
	l.settle()
	require.Eventually(t, func() bool { return markOf(r, "w") == 5 }, 10*time.Second, time.Millisecond)
	stop()
	require.Equal(t, 4, transfersSeen(r, "f", "m"))
	require.Equal(t, []uint64{1, 3}, src.subscriptions("w"), "back from where it was")
}
