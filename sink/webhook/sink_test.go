package webhook

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func testConfig(t *testing.T, url, dir string) Config {
	cfg := DefaultConfig()
	cfg.URL, cfg.KeyID, cfg.Secret, cfg.Dir = url, testKeyID, testSecret, dir
	cfg.BatchSize = 40
	cfg.Linger = time.Millisecond
	cfg.CheckInterval = 5 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = time.Millisecond, 10*time.Millisecond
	cfg.Timeout = 300 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// running is a sink started by a test; stop kills it (cancels its Run).
type running struct {
	s    *Sink
	stop func()
}

func startSink(t *testing.T, cfg Config, src Source, reg prometheus.Registerer) running {
	t.Helper()
	s, err := New(cfg, src, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return running{s: s, stop: stop}
}

// requireExactly checks that the receiver holds, after de-duplicating by
// seq, exactly world's events as the source holds them.
func requireExactly(t *testing.T, r *receiver, src *fakeSource, world string) {
	t.Helper()
	dedup, _ := r.world(world)
	evs := src.Events(world)
	require.Len(t, dedup, len(evs), "world %s: distinct events received", world)
	for _, ev := range evs {
		got, ok := dedup[ev.Seq]
		require.True(t, ok, "world %s event %d missing", world, ev.Seq)
		want, _ := json.Marshal(ev.Wire())
		have, _ := json.Marshal(got)
		require.JSONEq(t, string(want), string(have), "world %s event %d", world, ev.Seq)
	}
}

func caughtUp(r *receiver, src *fakeSource, world string) func() bool {
	return func() bool {
		dedup, _ := r.world(world)
		return len(dedup) == len(src.Events(world))
	}
}

func TestExportDeliversEveryEventDespiteFailuresAndRestarts(t *testing.T) {
	// Every 3rd request is refused, every 7th kept but answered 500 (a
	// lost 2xx), every 11th hangs past the client's timeout.
	r := newReceiver(t, func(n int) fault {
		switch {
		case n%11 == 0:
			return faultHang
		case n%7 == 0:
			return faultKeepThen500
		case n%3 == 0:
			return fault500
		}
		return faultNone
	})
	src := newFakeSource()
	src.Add("a", 300, 1e18)
	src.Add("b", 120, 1e18)
	dir := t.TempDir()
	cfg := testConfig(t, r.srv.URL, dir)

	reg := prometheus.NewRegistry()
	first := startSink(t, cfg, src, reg)
	require.Eventually(t, func() bool { d, _ := r.world("a"); return len(d) >= 100 }, 20*time.Second, time.Millisecond)
	first.stop() // killed mid-stream
	require.Positive(t, testutil.ToFloat64(first.s.m.failures.WithLabelValues(failStatus)))
	stoppedAt := first.s.Position("a")

	src.Add("a", 200, 1e18)
	src.Add("c", 50, 1e18)
	second := startSink(t, cfg, src, nil)
	require.GreaterOrEqual(t, second.s.Position("a"), stoppedAt, "the restarted sink resumes from the checkpoint")
	for _, w := range []string{"a", "b", "c"} {
		require.Eventually(t, caughtUp(r, src, w), 30*time.Second, time.Millisecond, "world %s", w)
	}
	// Once caught up, more events flow too.
	src.Add("b", 30, 1e18)
	require.Eventually(t, caughtUp(r, src, "b"), 30*time.Second, time.Millisecond)
	// The receiver may hold a batch whose 2xx the sink has not seen yet
	// (a kept-then-500 answer): wait for the positions too.
	for w, n := range map[string]uint64{"a": 500, "b": 150, "c": 50} {
		require.Eventually(t, func() bool { return second.s.Position(w) == n }, 30*time.Second, time.Millisecond, "world %s", w)
	}
	second.stop()

	require.Empty(t, r.problems())
	for _, w := range []string{"a", "b", "c"} {
		requireExactly(t, r, src, w)
	}
	_, all := r.world("a")
	t.Logf("world a: %d events received for %d distinct", all, len(src.Events("a")))

	// The checkpoint on disk says every event was accepted.
	cp, err := openCheckpoint(dir)
	require.NoError(t, err)
	require.Equal(t, uint64(500), cp.get("a"))
	require.Equal(t, uint64(150), cp.get("b"))
	require.Equal(t, uint64(50), cp.get("c"))
}

func TestExportRestartAfterCatchUpSendsNothingAgain(t *testing.T) {
	r := newReceiver(t, nil)
	src := newFakeSource()
	src.Add("a", 90, 1e18)
	cfg := testConfig(t, r.srv.URL, t.TempDir())
	first := startSink(t, cfg, src, nil)
	require.Eventually(t, func() bool { return first.s.Position("a") == 90 }, 20*time.Second, time.Millisecond)
	first.stop()
	_, before := r.world("a")

	second := startSink(t, cfg, src, nil)
	src.Add("a", 1, 1e18)
	require.Eventually(t, caughtUp(r, src, "a"), 20*time.Second, time.Millisecond)
	second.stop()
	_, after := r.world("a")
	require.Equal(t, before+1, after, "only the new event is sent after a restart from a checkpoint")
	requireExactly(t, r, src, "a")
}

func TestExportOnlyTheWorldsThisNodeLeadsAndSelects(t *testing.T) {
	r := newReceiver(t, nil)
	src := newFakeSource()
	src.Add("led", 10, 1e18)
	src.Add("other", 10, 1e18)
	src.Add("unselected", 10, 1e18)
	src.SetLeads("other", false)
	cfg := testConfig(t, r.srv.URL, t.TempDir())
	cfg.Worlds = []string{"led", "other"}
	s := startSink(t, cfg, src, nil)
	require.Eventually(t, caughtUp(r, src, "led"), 20*time.Second, time.Millisecond)
	d, _ := r.world("other")
	require.Empty(t, d, "a world whose group another node leads is not exported")

	src.SetLeads("other", true) // leadership moved here
	require.Eventually(t, caughtUp(r, src, "other"), 20*time.Second, time.Millisecond)
	s.stop()
	d, _ = r.world("unselected")
	require.Empty(t, d, "a world not in Config.Worlds is not exported")
	requireExactly(t, r, src, "other")
}

func TestExportWaitsOnArchiveGapAndCountsIt(t *testing.T) {
	r := newReceiver(t, nil)
	src := newFakeSource()
	src.Add("a", 10, 1e18)
	src.SetLow("a", 5) // events 1..4 pruned before they were exported
	cfg := testConfig(t, r.srv.URL, t.TempDir())
	s := startSink(t, cfg, src, nil)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(s.s.m.failures.WithLabelValues(failFeed)) >= 2
	}, 20*time.Second, time.Millisecond)
	s.stop()
	d, _ := r.world("a")
	require.Empty(t, d, "nothing after a gap is sent: the receiver would miss events silently")
	require.Zero(t, s.s.Position("a"))
}

func TestSignatureVerifiesOnlyTheSignedBodyAndKey(t *testing.T) {
	body := []byte(`{"schema":1}`)
	sig := Sign(testSecret, body)
	require.True(t, Verify(testSecret, body, sig))
	require.False(t, Verify(testSecret, []byte(`{"schema":2}`), sig))
	require.False(t, Verify([]byte("another-secret-of-16+"), body, sig))
	require.False(t, Verify(testSecret, body, ""))
}

func TestCheckpointRefusesACorruptOrNewerFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, checkpointFile), []byte("{not json"), 0o600))
	_, err := openCheckpoint(dir)
	require.ErrorContains(t, err, "webhook checkpoint")

	require.NoError(t, os.WriteFile(filepath.Join(dir, checkpointFile), []byte(`{"version":2,"positions":{}}`), 0o600))
	_, err = openCheckpoint(dir)
	require.ErrorContains(t, err, "version 2")
}

func TestCheckpointNeverGoesBack(t *testing.T) {
	dir := t.TempDir()
	cp, err := openCheckpoint(dir)
	require.NoError(t, err)
	require.NoError(t, cp.set("a", 10))
	require.NoError(t, cp.set("a", 5))
	again, err := openCheckpoint(dir)
	require.NoError(t, err)
	require.Equal(t, uint64(10), again.get("a"))
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig(t, "http://127.0.0.1:1/hook", t.TempDir())
	require.NoError(t, ok.Validate())
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"no url":          {func(c *Config) { c.URL = "" }, "URL is required"},
		"not http":        {func(c *Config) { c.URL = "ftp://x/y" }, "http or https"},
		"no host":         {func(c *Config) { c.URL = "http:///y" }, "http or https"},
		"bad url":         {func(c *Config) { c.URL = "http://[::1" }, "URL"},
		"no key id":       {func(c *Config) { c.KeyID = "" }, "key id is required"},
		"key id space":    {func(c *Config) { c.KeyID = "a b" }, "printable ASCII"},
		"short secret":    {func(c *Config) { c.Secret = []byte("short") }, "at least 16"},
		"no dir":          {func(c *Config) { c.Dir = "" }, "Dir"},
		"empty world":     {func(c *Config) { c.Worlds = []string{""} }, "empty world"},
		"batch 0":         {func(c *Config) { c.BatchSize = 0 }, "batch size"},
		"batch huge":      {func(c *Config) { c.BatchSize = maxBatch + 1 }, "batch size"},
		"negative linger": {func(c *Config) { c.Linger = -1 }, "linger"},
		"no interval":     {func(c *Config) { c.CheckInterval = 0 }, "check interval"},
		"retry order":     {func(c *Config) { c.RetryMax = 0 }, "RetryMin"},
		"no timeout":      {func(c *Config) { c.Timeout = 0 }, "Timeout"},
		"no logger":       {func(c *Config) { c.Logger = nil }, "Logger"},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
		})
	}
	_, err := New(ok, nil, nil)
	require.ErrorContains(t, err, "no source")
}
