package store

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/tracing"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// An action whose context carries a sampled span gets its queue wait and
// its commit as child spans, back to back; one whose span is unsampled,
// or that has none, gets nothing (and a recycled proposal keeps no times
// of its earlier use).
func TestBatcherTimesATracedActionsQueueWaitAndCommitOnly(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	mustCreateWorld(t, l, "w")
	rec := tracetest.NewSpanRecorder()
	sampled := tracing.NewWithProcessor(tracing.Config{SampleRatio: 1}, rec)
	unsampled := tracing.NewWithProcessor(tracing.Config{SampleRatio: 0}, rec)
	t.Cleanup(func() {
		require.NoError(t, sampled.Shutdown(context.Background()))
		require.NoError(t, unsampled.Shutdown(context.Background()))
	})

	for seq := uint64(1); seq <= 3; seq++ { // untraced and unsampled first: recycled proposals
		_, _, err := l.Act(ctxT(t), incr("w", "p", seq, "e", "c", 1))
		require.NoError(t, err)
		ctx, span := unsampled.Start(ctxT(t), "edge")
		_, _, err = l.Act(ctx, incr("w", "q", seq, "e", "c", 1))
		span.End()
		require.NoError(t, err)
	}
	require.Empty(t, rec.Started())

	ctx, span := sampled.Start(ctxT(t), "edge")
	ev, _, err := l.Act(ctx, incr("w", "p", 4, "e", "c", 1))
	require.NoError(t, err)
	span.End()
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	require.Len(t, spans, 3)
	edge, queue, commit := spans["edge"], spans["gsd.batcher.queue"], spans["gsd.raft.commit"]
	for _, s := range []sdktrace.ReadOnlySpan{queue, commit} {
		require.Equal(t, edge.SpanContext().SpanID(), s.Parent().SpanID())
		require.False(t, s.EndTime().Before(s.StartTime()))
		require.False(t, s.StartTime().Before(edge.StartTime()), "%s starts within the action", s.Name())
	}
	require.Equal(t, queue.EndTime(), commit.StartTime(), "the commit starts when the entry went to raft")
	var size int64
	for _, kv := range queue.Attributes() {
		if kv.Key == "gsd.batch.size" {
			size = kv.Value.AsInt64()
		}
	}
	require.GreaterOrEqual(t, size, int64(1), "the entry's size")
	require.Contains(t, commit.Attributes(), attribute.Int64("raft.index", int64(ev.Index)))
}

// A traced proposal that never reached raft records no stages.
func TestBatcherRecordsNoStagesForAProposalNeverProposed(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := tracing.NewWithProcessor(tracing.Config{SampleRatio: 1}, rec)
	ctx, span := tr.Start(context.Background(), "edge")
	p := &proposal{traced: true, queued: time.Now()}
	traceStages(ctx, p, outcome{err: ErrNotLeader})
	require.Empty(t, rec.Ended())

	p.proposed, p.applied = p.queued, p.queued
	traceStages(ctx, p, outcome{err: ErrOutcomeUnknown})
	span.End()
	require.Len(t, rec.Ended(), 3, "the edge's, the queue's and the commit's")
	var commit sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "gsd.raft.commit" {
			commit = s
		}
	}
	require.NotNil(t, commit)
	require.Contains(t, commit.Attributes(), attribute.String("error", ErrOutcomeUnknown.Error()))
	require.NoError(t, tr.Shutdown(context.Background()))
}
