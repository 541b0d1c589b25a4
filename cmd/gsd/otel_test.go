package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/wire"
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

// collector is an OTLP/HTTP receiver that keeps the bodies it was sent.
type collector struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
}

// sent reports whether any body it received holds every one of subs (the
// export's protobuf carries names and values as plain bytes).
func (c *collector) sent(subs ...string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := bytes.Join(c.bodies, nil)
	for _, s := range subs {
		if !bytes.Contains(all, []byte(s)) {
			return false
		}
	}
	return true
}

func TestRunExportsTheActionPathsSpansAndFlushesThemAtShutdown(t *testing.T) {
	t.Parallel()
	var col collector
	srv := httptest.NewServer(&col)
	defer srv.Close()
	n := startNode(t, "traced", t.TempDir(), "--otel-endpoint", srv.URL, "--otel-sample-ratio", "1")
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	_, err := c.Act(ctx, "arena", incr("p1", 1, "e1", 2))
	require.NoError(t, err)
	// The batch processor exports every few seconds; stopping flushes.
	require.Equal(t, 0, n.stop(t))
	require.True(t, col.sent("POST /v1/worlds/{world}/actions", "gsd.batcher.queue", "gsd.raft.commit", "service.name", "gsd", "traced"),
		"the collector got the action's spans")
	requireContains(t, n.stderr.String(), "tracing the action path")
}
