package tracing

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigValidation(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	require.Equal(t, 0.01, DefaultConfig().SampleRatio)
	for _, ok := range []Config{{SampleRatio: 0}, {SampleRatio: 1}, {Endpoint: "http://c:4318", SampleRatio: 0.5}, {Endpoint: "https://c/x"}} {
		require.NoError(t, ok.Validate(), "%+v", ok)
	}
	for _, bad := range []Config{{SampleRatio: -0.5}, {SampleRatio: 1.01}, {Endpoint: "c:4318"}, {Endpoint: "grpc://c:4317"}, {Endpoint: "http:///x"}, {Endpoint: "http://%zz"}} {
		require.Error(t, bad.Validate(), "%+v", bad)
	}
}

func TestEndpointGetsTheTracesPathOnlyWhenItHasNone(t *testing.T) {
	for in, want := range map[string]string{
		"http://c:4318":           "http://c:4318/v1/traces",
		"http://c:4318/":          "http://c:4318/v1/traces",
		"https://c/otlp/v1/spans": "https://c/otlp/v1/spans",
	} {
		got, err := endpointURL(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

func TestNewWithoutEndpointIsOffAndOffDoesNothing(t *testing.T) {
	tr, err := New(context.Background(), Config{SampleRatio: 1})
	require.NoError(t, err)
	require.Nil(t, tr)
	_, err = New(context.Background(), Config{SampleRatio: 2})
	require.Error(t, err)

	ctx := context.Background()
	got, span := tr.Start(ctx, "x")
	require.Equal(t, ctx, got)
	require.False(t, span.Recording())
	span.Set(Int("a", 1))
	span.Fail(errors.New("boom"))
	span.End()
	r := httptest.NewRequest("POST", "/", nil)
	got, span = tr.StartRequest(r, "x", true)
	require.Equal(t, r.Context(), got)
	require.False(t, span.Recording())
	require.False(t, Recording(ctx))
	h := http.Header{}
	require.False(t, StartClient(ctx, "c", h).Recording())
	require.Empty(t, h, "no trace context without a span")
	Interval(ctx, "i", time.Now(), time.Now()) // no parent: nothing
	require.NoError(t, tr.Shutdown(ctx))
}

func TestNewWithEndpointExportsInBatchesAndShutsDown(t *testing.T) {
	got := make(chan string, 1)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Path:
		default:
		}
	}))
	defer collector.Close()
	tr, err := New(context.Background(), Config{Endpoint: collector.URL, SampleRatio: 1, Node: "n1"})
	require.NoError(t, err)
	_, span := tr.Start(context.Background(), "gsd.play.act")
	require.True(t, span.Recording())
	span.End()
	require.NoError(t, tr.Shutdown(context.Background()), "shutdown flushes")
	require.Equal(t, "/v1/traces", <-got)
}

func TestSpansJoinAcrossACallAndStagesHangUnderTheirSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	caller := NewWithProcessor(Config{SampleRatio: 1, Node: "n2"}, rec)
	callee := NewWithProcessor(Config{SampleRatio: 0, Node: "n1"}, rec)
	ctx, root := caller.Start(context.Background(), "root")
	h := http.Header{}
	call := StartClient(ctx, "call", h)
	require.NotEmpty(t, h.Get("traceparent"))
	r := httptest.NewRequest("POST", "/", nil)
	r.Header = h
	sctx, served := callee.StartRequest(r, "served", true)
	require.True(t, served.Recording(), "the caller's decision holds over the callee's ratio")
	require.True(t, Recording(sctx))
	start := time.Now()
	Interval(sctx, "stage", start, start.Add(time.Millisecond), Int("n", 3), String("s", "x"))
	served.Set(String("gsd.world", "arena"))
	served.Fail(errors.New("boom"))
	served.Fail(nil)
	served.End()
	call.End()
	root.End()

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	require.Len(t, spans, 4)
	require.Equal(t, spans["root"].SpanContext().SpanID(), spans["call"].Parent().SpanID())
	require.Equal(t, spans["call"].SpanContext().SpanID(), spans["served"].Parent().SpanID())
	require.Equal(t, spans["served"].SpanContext().SpanID(), spans["stage"].Parent().SpanID())
	require.Equal(t, time.Millisecond, spans["stage"].EndTime().Sub(spans["stage"].StartTime()))
	require.Equal(t, codes.Error, spans["served"].Status().Code)
	require.Len(t, spans["stage"].Attributes(), 2)
	require.Equal(t, "arena", spans["served"].Attributes()[0].Value.AsString())

	// A public request's trace context is ignored: the callee decides.
	r = httptest.NewRequest("POST", "/", nil)
	r.Header = h
	_, public := callee.StartRequest(r, "public", false)
	require.False(t, public.Recording())
	require.NoError(t, caller.Shutdown(context.Background()))
	require.NoError(t, callee.Shutdown(context.Background()))
}

func TestNewFailsWhenItsContextHasEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(ctx, Config{Endpoint: "http://127.0.0.1:1", SampleRatio: 1})
	require.ErrorContains(t, err, "tracing: exporter")
}

func TestAnUnsampledSpanPassesItsDecisionOnAndRecordsNothing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := NewWithProcessor(Config{SampleRatio: 0}, rec)
	ctx, span := tr.Start(context.Background(), "edge")
	require.False(t, span.Recording())
	span.Set(Int("a", 1)) // nothing to set
	h := http.Header{}
	require.False(t, StartClient(ctx, "call", h).Recording())
	require.Regexp(t, `-00$`, h.Get("traceparent"), "the callee learns the action is not sampled")
	span.End()
	require.Empty(t, rec.Started())
	require.NoError(t, tr.Shutdown(context.Background()))
}
