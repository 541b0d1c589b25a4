package play

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/tracing"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// withTracing gives every node its own tracer sampling ratio of the actions
// that arrive at it, all recording into rec.
func withTracing(t *testing.T, rec *tracetest.SpanRecorder, ratio float64) func(*nodeConfig) {
	return func(c *nodeConfig) {
		tr := tracing.NewWithProcessor(tracing.Config{SampleRatio: ratio}, rec)
		t.Cleanup(func() { require.NoError(t, tr.Shutdown(context.Background())) })
		c.Tracer = tr
	}
}

// traceOf waits until rec holds n ended spans of the trace whose root is
// named root, and returns them by name (each name once).
func traceOf(t *testing.T, rec *tracetest.SpanRecorder, root string, n int) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	var spans map[string]sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		var id trace.TraceID
		for _, s := range rec.Ended() {
			if s.Name() == root {
				id = s.SpanContext().TraceID()
			}
		}
		spans = map[string]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			if id.IsValid() && s.SpanContext().TraceID() == id {
				require.NotContains(t, spans, s.Name(), "one %s span per trace", s.Name())
				spans[s.Name()] = s
			}
		}
		return len(spans) == n
	}, 10*time.Second, 5*time.Millisecond, "spans of %s: %v", root, func() []string {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		return names
	})
	return spans
}

// requireChild requires child's parent to be parent.
func requireChild(t *testing.T, parent, child sdktrace.ReadOnlySpan) {
	t.Helper()
	require.Equal(t, parent.SpanContext().SpanID(), child.Parent().SpanID(), "%s is a child of %s", child.Name(), parent.Name())
}

// requireLeaderStages requires the leader's spans of a forwarded action:
// the internal request of route under the follower's forward, and the
// batcher's queue wait and the commit under the request.
func requireLeaderStages(t *testing.T, spans map[string]sdktrace.ReadOnlySpan, route string) {
	t.Helper()
	fwd, in := spans["gsd.forward"], spans[route]
	require.Equal(t, trace.SpanKindClient, fwd.SpanKind())
	requireChild(t, fwd, in)
	require.True(t, in.Parent().IsRemote(), "the leader's span continues the follower's trace")
	require.Equal(t, trace.SpanKindServer, in.SpanKind())
	queue, commit := spans["gsd.batcher.queue"], spans["gsd.raft.commit"]
	requireChild(t, in, queue)
	requireChild(t, in, commit)
	require.False(t, commit.StartTime().Before(queue.EndTime()), "the commit starts when the queue wait ends")
	require.GreaterOrEqual(t, attr(queue, "gsd.batch.size").AsInt64(), int64(1), "the entry's size")
	require.Equal(t, "gsd", resourceValue(in, "service.name"))
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func resourceValue(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Resource().Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsString()
		}
	}
	return ""
}

func TestTracingFollowsAnActionFromAFollowersEdgeThroughTheLeadersCommit(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	nodes := startPlayCluster(t, 2, fastPlay, withTracing(t, rec, 1))
	l, f := nodes[0], nodes[1]
	l.env.Do("POST", "/v1/worlds", arenaBody)

	// An HTTP action on the follower: one trace from its edge, through the
	// forward, to the leader's commit.
	code, _, b := f.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 1))
	require.Equal(t, 200, code, "%s", b)
	spans := traceOf(t, rec, "POST /v1/worlds/{world}/actions", 5)
	root := spans["POST /v1/worlds/{world}/actions"]
	require.False(t, root.Parent().IsValid(), "the edge's span is the root")
	requireChild(t, root, spans["gsd.forward"])
	requireLeaderStages(t, spans, "POST /internal/v1/worlds/{world}/actions")

	// A play action on the follower: the same shape under the play span.
	c := dialPlay(t, f.env.WSURL("arena"))
	welcome(t, c, "ann")
	wsSend(t, c, map[string]any{"type": "action", "action": map[string]any{
		"seq": 1, "ops": []any{map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": 5}}}})
	for m := wsRecv(t, c); m["type"] != "result"; m = wsRecv(t, c) {
	}
	spans = traceOf(t, rec, "gsd.play.act", 6)
	act := spans["gsd.play.act"]
	require.False(t, act.Parent().IsValid(), "the play action's span is the root")
	require.Equal(t, int64(2), attr(act, "gsd.seq").AsInt64(), "its event is found by world and seq")
	require.Equal(t, "arena", attr(act, "gsd.world").AsString())
	requireChild(t, act, spans["gsd.forward"])
	requireLeaderStages(t, spans, "POST /internal/v1/worlds/{world}/actions:forward") // the compact act route
	// Its event's fan-out by the follower's hub, one span for the node.
	offer := spans["gsd.fanout.offer"]
	requireChild(t, act, offer)
	require.Equal(t, int64(2), attr(offer, "gsd.seq").AsInt64())
	require.Equal(t, int64(1), attr(offer, "gsd.members").AsInt64(), "ann's connection")
}

func TestTracingSamplesAtTheEdgeOnly(t *testing.T) {
	// The follower samples nothing; the leader would sample everything
	// that arrives at its own edge, but keeps the follower's decision.
	rec := tracetest.NewSpanRecorder()
	ratios := []float64{1, 0} // the leader's, then the follower's
	opt := func(c *nodeConfig) {
		withTracing(t, rec, ratios[0])(c)
		ratios = ratios[1:]
	}
	nodes := startPlayCluster(t, 2, fastPlay, opt)
	l, f := nodes[0], nodes[1]
	l.env.Do("POST", "/v1/worlds", arenaBody)

	code, _, b := f.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 1))
	require.Equal(t, 200, code, "%s", b)
	code, _, b = f.env.Do("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+actBody("bob", 2)+`]}`)
	require.Equal(t, 200, code, "%s", b)
	c := dialPlay(t, f.env.WSURL("arena"))
	welcome(t, c, "ann")
	wsSend(t, c, map[string]any{"type": "action", "action": map[string]any{
		"seq": 1, "ops": []any{map[string]any{"op": "incr", "entity": "e1", "field": "score", "by": 5}}}})
	for m := wsRecv(t, c); m["type"] != "result"; m = wsRecv(t, c) {
	}
	// Spans start before the answer: none was started for those actions.
	require.Empty(t, rec.Started(), "the follower sampled nothing, and the leader followed it")

	// The leader's own edge samples, so it would have recorded them.
	code, _, b = l.env.Do("POST", "/v1/worlds/arena/actions", actBody("bob", 3))
	require.Equal(t, 200, code, "%s", b)
	spans := traceOf(t, rec, "POST /v1/worlds/{world}/actions", 3)
	requireChild(t, spans["POST /v1/worlds/{world}/actions"], spans["gsd.batcher.queue"])
	requireChild(t, spans["POST /v1/worlds/{world}/actions"], spans["gsd.raft.commit"])
	require.Len(t, rec.Started(), 3)
}
