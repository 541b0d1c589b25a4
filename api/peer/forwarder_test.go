package peer

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// logLines collects the records of a logger.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(b))
	return len(b), nil
}

func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func newTestForwarder(t *testing.T, queue int) (*Forwarder, *logLines) {
	t.Helper()
	logs := &logLines{}
	cfg := ForwarderConfig{Queue: queue, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	f, err := NewForwarder(cfg, prometheus.NewRegistry())
	require.NoError(t, err)
	return f, logs
}

func mismatchAt(index uint64) store.CheckpointMismatch {
	m := theMismatch
	m.Index = index
	return m
}

// run runs f with send until the test ends.
func run(t *testing.T, f *Forwarder, send Sender) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, send)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// recorder is a Sender that records what it was sent and answers with
// the next of its errors (nil once they run out).
type recorder struct {
	mu   sync.Mutex
	sent []uint64 // the reports' indexes, in order
	errs []error
	got  chan struct{}
}

func newRecorder(errs ...error) *recorder {
	return &recorder{errs: errs, got: make(chan struct{}, 100)}
}

func (r *recorder) send(_ context.Context, m store.CheckpointMismatch) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m.Index)
	r.got <- struct{}{}
	if len(r.errs) == 0 {
		return false, nil
	}
	err := r.errs[0]
	r.errs = r.errs[1:]
	return false, err
}

func (r *recorder) calls() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.sent...)
}

// wait waits for n more calls of the sender.
func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("the forwarder did not send: %v", r.calls())
		}
	}
}

func outcome(f *Forwarder, o string) float64 { return testutil.ToFloat64(f.outcome.WithLabelValues(o)) }

func TestForwarderQueueDropsTheOldestWhenFull(t *testing.T) {
	t.Parallel()
	f, _ := newTestForwarder(t, 2)
	for i := range uint64(4) {
		f.Report(mismatchAt(i + 1)) // never blocks: nothing sends yet
	}
	require.Equal(t, 2.0, outcome(f, forwardDropFull))
	r := newRecorder()
	run(t, f, r.send)
	r.wait(t, 2)
	require.Equal(t, []uint64{3, 4}, r.calls(), "the two newest, oldest first")
	require.Eventually(t, func() bool { return outcome(f, forwardSent) == 2 }, 10*time.Second, time.Millisecond)
}

func TestForwarderRetriesWhileThereIsNoLeaderThenSends(t *testing.T) {
	t.Parallel()
	f, _ := newTestForwarder(t, 4)
	noLeader := fmt.Errorf("%w: no known leader", store.ErrNotLeader)
	moved := &edge.RemoteError{Status: http.StatusServiceUnavailable, Code: edge.CodeNotLeader, Msg: "not the leader"}
	r := newRecorder(noLeader, moved, noLeader)
	run(t, f, r.send)
	f.Report(mismatchAt(1))
	r.wait(t, 4)
	require.Equal(t, []uint64{1, 1, 1, 1}, r.calls())
	require.Eventually(t, func() bool { return outcome(f, forwardSent) == 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, 3.0, outcome(f, forwardRetried))

	f.Report(mismatchAt(2)) // later reports go on as usual
	r.wait(t, 1)
	require.Equal(t, []uint64{1, 1, 1, 1, 2}, r.calls())
}

// TestForwarderKeepsOrderAndBoundWhileRetrying: a report being retried
// stays first; when newer ones fill the queue meanwhile, it is the oldest
// and is dropped.
func TestForwarderKeepsOrderAndBoundWhileRetrying(t *testing.T) {
	t.Parallel()
	f, _ := newTestForwarder(t, 2)
	require.True(t, f.retry(mismatchAt(1), false, store.ErrNotLeader))
	f.Report(mismatchAt(2))
	m, ok := f.next()
	require.True(t, ok)
	require.Equal(t, uint64(1), m.Index, "the retried report goes first")
	f.Report(mismatchAt(3))
	require.True(t, f.retry(m, false, store.ErrNotLeader))
	require.Equal(t, 1.0, outcome(f, forwardDropFull), "2 and 3 fill the queue")
	var left []uint64
	for m, ok := f.next(); ok; m, ok = f.next() {
		left = append(left, m.Index)
	}
	require.Equal(t, []uint64{2, 3}, left)
}

// TestForwarderDropsReportsALeaderWithoutTheRouteRefuses: a leader of an
// older version answers 404: logged once, every such report dropped,
// never retried.
func TestForwarderDropsReportsALeaderWithoutTheRouteRefuses(t *testing.T) {
	t.Parallel()
	f, logs := newTestForwarder(t, 4)
	notFound := &edge.RemoteError{Status: http.StatusNotFound, Code: edge.CodeNotFound, Msg: "no such route"}
	bad := &edge.RemoteError{Status: http.StatusBadRequest, Code: "malformed", Msg: "index must be positive"}
	r := newRecorder(notFound, notFound, bad)
	run(t, f, r.send)
	for i := range uint64(4) {
		f.Report(mismatchAt(i + 1))
	}
	r.wait(t, 4)
	require.Eventually(t, func() bool { return outcome(f, forwardSent) == 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, []uint64{1, 2, 3, 4}, r.calls(), "each sent once")
	require.Equal(t, 2.0, outcome(f, forwardUnsupported))
	require.Equal(t, 1.0, outcome(f, forwardRefused))
	require.Zero(t, outcome(f, forwardRetried))
	require.Equal(t, 1, logs.count("takes no checkpoint mismatch reports"), "logged once")
	require.Equal(t, 1, logs.count("refused a checkpoint mismatch report"))
}

func TestForwarderRunEndsWithItsContextWhileRetrying(t *testing.T) {
	t.Parallel()
	f, _ := newTestForwarder(t, 4)
	f.cfg.MinBackoff, f.cfg.MaxBackoff = time.Hour, time.Hour
	r := newRecorder(store.ErrNotLeader)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, r.send)
	}()
	f.Report(mismatchAt(1))
	r.wait(t, 1)
	cancel()
	<-done
	m, ok := f.next()
	require.True(t, ok, "the undelivered report is still queued")
	require.Equal(t, uint64(1), m.Index)
}

// TestForwarderRunEndsWithItsContextMidSend: a send cut off by the end of
// Run's context leaves its report queued, first.
func TestForwarderRunEndsWithItsContextMidSend(t *testing.T) {
	t.Parallel()
	f, _ := newTestForwarder(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	sending := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx, func(ctx context.Context, _ store.CheckpointMismatch) (bool, error) {
			close(sending)
			<-ctx.Done()
			return false, ctx.Err()
		})
	}()
	f.Report(mismatchAt(1))
	<-sending
	f.Report(mismatchAt(2))
	cancel()
	<-done
	var left []uint64
	for m, ok := f.next(); ok; m, ok = f.next() {
		left = append(left, m.Index)
	}
	require.Equal(t, []uint64{1, 2}, left)
}

func TestForwarderConfigIsValidated(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultForwarderConfig().Validate())
	for _, c := range []ForwarderConfig{
		{Queue: 0, MinBackoff: time.Second, MaxBackoff: time.Second},
		{Queue: 1, MinBackoff: 0, MaxBackoff: time.Second},
		{Queue: 1, MinBackoff: 2 * time.Second, MaxBackoff: time.Second},
	} {
		_, err := NewForwarder(c, prometheus.NewRegistry())
		require.Error(t, err, "%+v", c)
	}
	reg := prometheus.NewRegistry()
	_, err := NewForwarder(DefaultForwarderConfig(), reg)
	require.NoError(t, err)
	_, err = NewForwarder(DefaultForwarderConfig(), reg)
	require.ErrorContains(t, err, "register", "a second forwarder on one registry")
}
