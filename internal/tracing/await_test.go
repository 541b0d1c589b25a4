package tracing

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestAnAwaitedSpanIsTakenOnceAndGetsItsLaterStage(t *testing.T) {
	var off *Tracer
	off.Await(Key{World: "w"}, Span{})
	require.False(t, off.Awaiting())
	_, ok := off.Take(Key{World: "w"})
	require.False(t, ok)
	off.Forget(Key{World: "w"})

	rec := tracetest.NewSpanRecorder()
	tr := NewWithProcessor(Config{SampleRatio: 1}, rec)
	unsampled := NewWithProcessor(Config{SampleRatio: 0}, rec)
	_, skipped := unsampled.Start(context.Background(), "unsampled")
	tr.Await(Key{World: "w", Player: "p", Seq: 9}, skipped)
	require.False(t, tr.Awaiting(), "an unsampled action awaits nothing")

	k := Key{World: "w", Player: "p", Seq: 1}
	_, span := tr.Start(context.Background(), "act")
	tr.Await(k, span)
	require.True(t, tr.Awaiting())
	span.End()
	p, ok := tr.Take(k)
	require.True(t, ok)
	_, ok = tr.Take(k)
	require.False(t, ok, "taken once")
	require.False(t, tr.Awaiting())
	start := time.Now()
	p.Record("later", start, start.Add(time.Millisecond), Int("gsd.seq", 4))
	ended := rec.Ended()
	require.Len(t, ended, 2)
	require.Equal(t, ended[0].SpanContext().SpanID(), ended[1].Parent().SpanID(), "under the action's span, after it ended")
	require.Equal(t, "later", ended[1].Name())

	_, again := tr.Start(context.Background(), "again")
	defer again.End()
	tr.Await(k, again)
	tr.Forget(k)
	require.False(t, tr.Awaiting())
	require.NoError(t, tr.Shutdown(context.Background()))
	require.NoError(t, unsampled.Shutdown(context.Background()))
}

func TestAwaitingIsBoundedAndDropsStaleActionsFirst(t *testing.T) {
	tr := NewWithProcessor(Config{SampleRatio: 1}, tracetest.NewSpanRecorder())
	_, span := tr.Start(context.Background(), "act")
	defer span.End()
	for i := range maxAwaiting {
		tr.Await(Key{World: "w", Seq: uint64(i)}, span)
	}
	over := Key{World: "w", Seq: maxAwaiting}
	tr.Await(over, span)
	_, ok := tr.Take(over)
	require.False(t, ok, "full: not kept")

	// Half of them grow stale: they make room.
	tr.awaits.mu.Lock()
	for i := range maxAwaiting / 2 {
		k := Key{World: "w", Seq: uint64(i)}
		w := tr.awaits.m[k]
		w.at = w.at.Add(-2 * awaitTTL)
		tr.awaits.m[k] = w
	}
	tr.awaits.mu.Unlock()
	tr.Await(over, span)
	_, ok = tr.Take(over)
	require.True(t, ok)
	_, ok = tr.Take(Key{World: "w", Seq: 0})
	require.False(t, ok, "stale: dropped")
	_, ok = tr.Take(Key{World: "w", Seq: maxAwaiting - 1})
	require.True(t, ok, "fresh: kept")
	require.NoError(t, tr.Shutdown(context.Background()))
}
