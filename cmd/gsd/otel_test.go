package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// otelFlags parses args, then the config file at path (if any) and env,
// into new otelOptions.
func otelFlags(t *testing.T, path string, env map[string]string, args ...string) (*otelOptions, error) {
	t.Helper()
	o := &otelOptions{}
	fs := pflag.NewFlagSet("gsd", pflag.ContinueOnError)
	o.flags(fs)
	require.NoError(t, fs.Parse(args))
	require.NoError(t, applyConfig(fs, path, envOf(env)))
	return o, o.check()
}

func TestOtelFlagsAreOffByDefaultAndComeFromFlagsEnvAndFile(t *testing.T) {
	fs := rootFlags(t)
	require.Equal(t, "", get(t, fs, "otel-endpoint"), "tracing is off unless asked")
	require.Equal(t, "0.01", get(t, fs, "otel-sample-ratio"))

	o, err := otelFlags(t, "", nil)
	require.NoError(t, err)
	stop, err := o.start(context.Background(), "n1", new(api.Config), time.Second, slog.Default())
	require.NoError(t, err)
	stop()

	o, err = otelFlags(t, "", nil, "--otel-endpoint", "http://127.0.0.1:4318", "--otel-sample-ratio", "0.5")
	require.NoError(t, err)
	require.Equal(t, otelOptions{endpoint: "http://127.0.0.1:4318", ratio: 0.5}, *o)

	path := writeConfig(t, "otel-endpoint = \"https://collector:4318/v1/traces\"\notel-sample-ratio = 1.0\n")
	o, err = otelFlags(t, path, map[string]string{"GSD_OTEL_SAMPLE_RATIO": "0.25"})
	require.NoError(t, err)
	require.Equal(t, otelOptions{endpoint: "https://collector:4318/v1/traces", ratio: 0.25}, *o, "file, then env over file")
}

func TestOtelFlagsRefuseBadValuesNamingTheFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--otel-sample-ratio", "1.5"}, "--otel-sample-ratio"},
		{[]string{"--otel-sample-ratio", "-0.1"}, "--otel-sample-ratio"},
		{[]string{"--otel-sample-ratio", "NaN"}, "--otel-sample-ratio"},
		{[]string{"--otel-endpoint", "collector:4318"}, "--otel-endpoint"},
		{[]string{"--otel-endpoint", "ftp://collector"}, "--otel-endpoint"},
		{[]string{"--otel-endpoint", "http://"}, "--otel-endpoint"},
		{[]string{"--otel-endpoint", "http://a b"}, "--otel-endpoint"},
	} {
		_, err := otelFlags(t, "", nil, c.args...)
		require.ErrorContains(t, err, c.want, "%v", c.args)
	}
}

func TestOtelStartSetsTheEdgesTracerAndStopFlushesOnce(t *testing.T) {
	o := &otelOptions{endpoint: "http://127.0.0.1:1", ratio: 1}
	var cfg api.Config
	stop, err := o.start(context.Background(), "n1", &cfg, 5*time.Second, slog.Default())
	require.NoError(t, err)
	require.NotNil(t, cfg.Tracer, "an endpoint turns tracing on")
	stop()
	stop() // idempotent: the deferred call after the clean shutdown's
}
