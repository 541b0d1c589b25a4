package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/internal/tracing"
	"github.com/spf13/pflag"
)

// otelOptions are the flags of OpenTelemetry tracing of the action path
// (internal/tracing, docs/OPERATIONS.md); with no endpoint it stays off.
type otelOptions struct {
	endpoint string
	ratio    float64
}

func (o *otelOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.endpoint, "otel-endpoint", "", "OTLP/HTTP collector URL to export traces of the action path to, e.g. http://127.0.0.1:4318 (empty: tracing off)")
	f.Float64Var(&o.ratio, "otel-sample-ratio", tracing.DefaultConfig().SampleRatio, "fraction of actions traced, decided where each arrives (0 to 1)")
}

// config is the tracing config of node id.
func (o *otelOptions) config(id string) tracing.Config {
	return tracing.Config{Endpoint: o.endpoint, SampleRatio: o.ratio, Node: id}
}

// check validates the flags.
func (o *otelOptions) check() error {
	if err := (tracing.Config{SampleRatio: o.ratio}).Validate(); err != nil {
		return fmt.Errorf("--otel-sample-ratio: %w", err)
	}
	if err := o.config("").Validate(); err != nil {
		return fmt.Errorf("--otel-endpoint: %w", err)
	}
	return nil
}

// start sets c's tracer (none when tracing is off) and returns the
// function that flushes the spans not yet exported and stops the exporter,
// waiting at most timeout; it may be called more than once.
func (o *otelOptions) start(ctx context.Context, id string, c *api.Config, timeout time.Duration, log *slog.Logger) (func(), error) {
	tr, err := tracing.New(ctx, o.config(id))
	if err != nil || tr == nil {
		return func() {}, err
	}
	c.Tracer = tr
	log.Info("tracing the action path", "endpoint", o.endpoint, "sample_ratio", o.ratio)
	done := false
	return func() {
		if done {
			return
		}
		done = true
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			log.Warn("tracing: flush at shutdown", "err", err)
		}
	}, nil
}
