package moderation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/syncbuf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// writer is a Writer over an fsmGroup: fails answers the first calls.
type writer struct {
	g    *fsmGroup
	seqs Seqs

	mu    sync.Mutex
	fails []error
	calls int
}

func (w *writer) Raise(ctx context.Context, r Record) (bool, error) {
	w.mu.Lock()
	w.calls++
	if len(w.fails) > 0 {
		err := w.fails[0]
		w.fails = w.fails[1:]
		w.mu.Unlock()
		return false, err
	}
	w.mu.Unlock()
	return Raise(ctx, w.g, w.g, r, "gsd.n1", w.seqs.Next())
}

func (w *writer) World(id string) (fsm.WorldInfo, error) {
	if id == "arena" {
		return fsm.WorldInfo{ID: id, Incarnation: 42}, nil
	}
	return fsm.WorldInfo{}, fsm.ErrUnknownWorld
}

// syncBuffer is a buffer safe for a writer and a reader goroutine.
type syncBuffer = syncbuf.Buffer

func startRecorder(t *testing.T, w Writer, m *RecorderMetrics) (*Recorder, *syncBuffer, func()) {
	t.Helper()
	var logs syncBuffer
	r, err := NewRecorder(w, "n1", slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	r.Metrics = m
	r.RetryMin, r.RetryMax = time.Millisecond, 2*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	return r, &logs, func() { cancel(); <-done }
}

func TestRecorderRecordsFlagsInOrderAndRetriesFailures(t *testing.T) {
	g := newFSMGroup(t)
	w := &writer{g: g, fails: []error{errDown}}
	for range 10 {
		w.fails = append(w.fails, errDown) // the tenth attempt logs again
	}
	m, err := NewRecorderMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	r, logs, stop := startRecorder(t, w, m)
	defer stop()
	var s detect.Sink = r
	s.Flag(flag())
	s.Flag(detect.Flag{Detector: "funnel", Players: []string{"eve", "mal"}, Evidence: []detect.Ref{{World: "gone", Seq: 1}}})
	s.Flag(flag())                        // raised again: recorded once
	s.Flag(detect.Flag{Detector: "jump"}) // no players: refused, dropped
	require.Eventually(t, func() bool { return r.Pending() == 0 }, 10*time.Second, time.Millisecond)

	first := g.record(t, FromFlag(flag(), 42, "n1").ID)
	require.Equal(t, uint64(42), first.Incarnation, "the incarnation this node knows")
	second := g.record(t, ID("funnel", []string{"eve", "mal"}, "gone", 0))
	require.Equal(t, uint64(0), second.Incarnation, "a world this node does not know")
	require.Less(t, first.Raised, second.Raised, "in order")
	require.Contains(t, logs.String(), "retrying")
	require.Contains(t, logs.String(), "attempt=10")
	require.Contains(t, logs.String(), "new=false")
	require.Contains(t, logs.String(), "dropped")
	require.Equal(t, 2.0, testutil.ToFloat64(m.Recorded(ResultNew)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Recorded(ResultDuplicate)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Recorded(ResultDropped)))
	require.Equal(t, 0.0, testutil.ToFloat64(m.Pending()))
	reg := prometheus.NewRegistry()
	_, err = NewRecorderMetrics(reg)
	require.NoError(t, err)
	_, err = NewRecorderMetrics(reg)
	require.Error(t, err, "registered twice")
}

// A flag that names its world's incarnation (its detectors followed that
// incarnation) keeps it, though this node no longer knows the world: a
// flag handed out again from a checkpoint after its match world was
// deleted is the record it was before, not a second one.
func TestRecorderKeepsTheIncarnationAFlagNames(t *testing.T) {
	g := newFSMGroup(t)
	r, _, stop := startRecorder(t, &writer{g: g}, nil)
	defer stop()
	r.Flag(detect.Flag{Detector: "funnel", Players: []string{"eve", "mal"}, Evidence: []detect.Ref{{World: "gone", Seq: 1}}, Incarnation: 7})
	require.Eventually(t, func() bool { return r.Pending() == 0 }, 10*time.Second, time.Millisecond)
	rec := g.record(t, ID("funnel", []string{"eve", "mal"}, "gone", 7))
	require.Equal(t, uint64(7), rec.Incarnation)
}

// A restored flag of a world made before incarnations (0) keeps the
// record id of its first record though the world was created again
// since (this node knows it as incarnation 42 now): no second record, no
// second webhook. A new flag of incarnation 0 still takes the world's.
func TestRecorderNeverLooksUpTheIncarnationOfARestoredFlag(t *testing.T) {
	g := newFSMGroup(t)
	r, _, stop := startRecorder(t, &writer{g: g}, nil)
	defer stop()
	fl := detect.Flag{Detector: "funnel", Players: []string{"eve", "mal"}, Evidence: []detect.Ref{{World: "arena", Seq: 1}}}
	restored := fl
	restored.Restored = true
	r.Flag(restored)
	r.Flag(fl)
	require.Eventually(t, func() bool { return r.Pending() == 0 }, 10*time.Second, time.Millisecond)
	require.Equal(t, uint64(0), g.record(t, ID("funnel", []string{"eve", "mal"}, "arena", 0)).Incarnation)
	require.Equal(t, uint64(42), g.record(t, ID("funnel", []string{"eve", "mal"}, "arena", 42)).Incarnation)
}

func TestRecorderStopsWhileRetrying(t *testing.T) {
	w := &writer{g: newFSMGroup(t)}
	for range 1000 {
		w.fails = append(w.fails, errDown)
	}
	m, err := NewRecorderMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	r, _, stop := startRecorder(t, w, m)
	r.Flag(flag())
	require.Eventually(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.calls > 0 }, 10*time.Second, time.Millisecond)
	stop() // returns: the retry loop ends with its context
	require.Equal(t, 1, r.Pending(), "still queued")
	require.Equal(t, 1.0, testutil.ToFloat64(m.Pending()))
}

func TestNewRecorderNeedsItsParts(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for i, c := range []struct {
		w   Writer
		by  string
		log *slog.Logger
	}{{nil, "n", log}, {&writer{}, "", log}, {&writer{}, "n", nil}} {
		_, err := NewRecorder(c.w, c.by, c.log)
		require.Error(t, err, fmt.Sprint(i))
	}
	require.False(t, errors.Is(nil, ErrInvalid))
}
