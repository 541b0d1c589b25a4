// Package tracing is gsd's OpenTelemetry tracing of the action path
// (issue 16): the edge starts a span per action (an HTTP action or batch
// request, a play action), the internal call to the leader carries W3C
// trace context so the leader's spans join the same trace, and the store
// adds the batcher's queue wait and the commit under whatever span the
// action's context carries; a play action's event's fan-out on the node
// serving the player is recorded under the action's span (await.go).
//
// Tracing is off unless an OTLP endpoint is configured: a nil *Tracer
// starts nothing and a zero Span does nothing, so the edge pays one nil
// check per request. When on, sampling is decided once, at the edge, by a
// parent-based ratio sampler: an unsampled action carries a non-recording
// span, and every later stage asks Recording once and does nothing more.
//
// The package wraps otel so that the rest of the module imports only it
// (docs/import-rules.txt).
package tracing

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ServiceName is the service.name of every span gsd exports.
const ServiceName = "gsd"

// scope names the instrumentation in exported spans.
const scope = "github.com/gsd-dev/gsd"

// Config configures tracing.
type Config struct {
	// Endpoint is the OTLP/HTTP collector's URL (http://host:4318; the
	// path defaults to /v1/traces). Empty turns tracing off.
	Endpoint string
	// SampleRatio is the fraction of actions traced, decided at the edge
	// (0 traces none, 1 all).
	SampleRatio float64
	// Node is this node's id, a resource attribute of every span.
	Node string
}

// DefaultConfig returns the defaults: off, and 1% of actions when on.
func DefaultConfig() Config { return Config{SampleRatio: 0.01} }

// Validate checks the config.
func (c Config) Validate() error {
	if math.IsNaN(c.SampleRatio) || c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("tracing: sample ratio %v: must be between 0 and 1", c.SampleRatio)
	}
	if c.Endpoint == "" {
		return nil
	}
	if _, err := endpointURL(c.Endpoint); err != nil {
		return err
	}
	return nil
}

// endpointURL returns the exporter's URL: Endpoint with /v1/traces when it
// has no path.
func endpointURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("tracing: endpoint %q: %v", endpoint, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing: endpoint %q: want an http:// or https:// URL with a host (http://collector:4318)", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Tracer starts the edge's spans and exports every span of this node. A
// nil *Tracer is off: it starts nothing.
type Tracer struct {
	tp     *sdktrace.TracerProvider
	tr     trace.Tracer
	prop   propagation.TraceContext
	awaits awaits // play actions awaiting their fan-out (await.go)
}

// New returns a Tracer that exports to cfg.Endpoint over OTLP/HTTP in
// batches, or nil (off) when cfg.Endpoint is empty. The exporter connects
// lazily: a collector that is down loses spans, never actions.
func New(ctx context.Context, cfg Config) (*Tracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Endpoint == "" {
		return nil, nil
	}
	u, _ := endpointURL(cfg.Endpoint) // Validate accepted it
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u))
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	return NewWithProcessor(cfg, sdktrace.NewBatchSpanProcessor(exp)), nil
}

// NewWithProcessor returns a Tracer whose spans go to sp (tests pass a
// tracetest.SpanRecorder), whatever cfg.Endpoint says; cfg must be valid.
func NewWithProcessor(cfg Config, sp sdktrace.SpanProcessor) *Tracer {
	res := resource.NewSchemaless(
		attribute.String("service.name", ServiceName),
		attribute.String("service.instance.id", cfg.Node),
		attribute.String("gsd.node", cfg.Node),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithSpanProcessor(sp),
	)
	return &Tracer{tp: tp, tr: tp.Tracer(scope)}
}

// Shutdown flushes the spans not yet exported and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Start starts a root span of an action arriving at this node's edge (a
// play action), sampled by the ratio. Off, it returns ctx and a zero Span.
func (t *Tracer) Start(ctx context.Context, name string) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	return ctx, Span{s}
}

// StartRequest starts the span of an HTTP request, named name. remote says
// whether r comes from another node of the cluster: only then does its W3C
// trace context make the span a child of the caller's (so a client cannot
// force its requests to be sampled).
func (t *Tracer) StartRequest(r *http.Request, name string, remote bool) (context.Context, Span) {
	if t == nil {
		return r.Context(), Span{}
	}
	ctx := r.Context()
	if remote {
		ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, s := t.tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	return ctx, Span{s}
}

// Recording reports whether ctx carries a sampled span of this node: the one
// check the stages after the edge make per action.
func Recording(ctx context.Context) bool {
	return trace.SpanFromContext(ctx).IsRecording()
}

// StartClient starts the span of a call to another node under the span ctx
// carries, and writes the trace context into h so that the callee's spans
// join the trace. An unsampled span's context goes along too, so that the
// callee does not sample on its own what the edge did not: the decision
// is the edge's. With no span in ctx it does nothing.
func StartClient(ctx context.Context, name string, h http.Header) Span {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		if parent.SpanContext().IsValid() {
			propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
		}
		return Span{}
	}
	ctx, s := parent.TracerProvider().Tracer(scope).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	return Span{s}
}

// Interval records a finished span from start to end under the span ctx
// carries (the batcher's queue wait and commit, timed by the batcher
// itself), with attrs. With no recording span in ctx it does nothing.
func Interval(ctx context.Context, name string, start, end time.Time, attrs ...Attr) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return
	}
	_, s := parent.TracerProvider().Tracer(scope).Start(ctx, name, trace.WithTimestamp(start))
	for _, a := range attrs {
		s.SetAttributes(attribute.KeyValue(a))
	}
	s.End(trace.WithTimestamp(end))
}

// Attr is one attribute of a span.
type Attr attribute.KeyValue

// Int is an integer attribute.
func Int(key string, v int64) Attr { return Attr(attribute.Int64(key, v)) }

// String is a string attribute.
func String(key, v string) Attr { return Attr(attribute.String(key, v)) }

// Span is one started span; the zero Span (tracing off, or not sampled
// where the caller checked) does nothing.
type Span struct{ s trace.Span }

// Recording reports whether the span records (is sampled).
func (s Span) Recording() bool { return s.s != nil && s.s.IsRecording() }

// Set sets attributes, when the span records.
func (s Span) Set(attrs ...Attr) {
	if !s.Recording() {
		return
	}
	for _, a := range attrs {
		s.s.SetAttributes(attribute.KeyValue(a))
	}
}

// Fail marks the span failed with err (nil: nothing).
func (s Span) Fail(err error) {
	if err == nil || !s.Recording() {
		return
	}
	s.s.RecordError(err)
	s.s.SetStatus(codes.Error, err.Error())
}

// End ends the span.
func (s Span) End() {
	if s.s != nil {
		s.s.End()
	}
}
