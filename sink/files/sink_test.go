package files

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.MaxBytes = 4000
	cfg.MaxAge = 10 * time.Millisecond // so a world's last events reach a finished file
	cfg.CheckInterval = 5 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = time.Millisecond, 10*time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

type running struct {
	s    *Sink
	stop func()
}

func startSink(t *testing.T, cfg Config, src Source) running {
	t.Helper()
	s, err := New(cfg, src, nil)
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

func at(s *Sink, world string, seq uint64) func() bool {
	return func() bool { return s.Position(world) == seq }
}

// readFiles returns the events of world's finished files in dir, in file
// order, after checking each file's name against its content.
func readFiles(t *testing.T, dir, world string) []wire.Event {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		if w, _, _, ok := ParseFileName(e.Name()); ok && w == world {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []wire.Event
	for _, name := range names {
		_, first, last, _ := ParseFileName(name)
		f, err := os.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		gz, err := gzip.NewReader(f)
		require.NoError(t, err, name)
		sc := bufio.NewScanner(gz)
		sc.Buffer(nil, 1<<20)
		var evs []wire.Event
		for sc.Scan() {
			var ev wire.Event
			require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), name)
			evs = append(evs, ev)
		}
		require.NoError(t, sc.Err(), name)
		require.NoError(t, f.Close())
		require.NotEmpty(t, evs, name)
		require.Equal(t, first, evs[0].Seq, name)
		require.Equal(t, last, evs[len(evs)-1].Seq, name)
		out = append(out, evs...)
	}
	return out
}

// requireExactlyOnce checks that world's files hold each of its events
// once, in seq order, as the source holds them.
func requireExactlyOnce(t *testing.T, dir string, src *fakeSource, world string) {
	t.Helper()
	got := readFiles(t, dir, world)
	want := src.Events(world)
	require.Len(t, got, len(want), "world %s", world)
	for i, ev := range want {
		w, _ := json.Marshal(ev.Wire())
		g, _ := json.Marshal(got[i])
		require.JSONEq(t, string(w), string(g), "world %s event %d", world, ev.Seq)
	}
}

func TestFilesHoldEveryEventOnceAcrossRestartsAndACrashLeftover(t *testing.T) {
	src := newFakeSource()
	src.Add("a", 300, 1e18)
	src.Add("b/c.d", 40, 1e18)
	dir := t.TempDir()
	cfg := testConfig(dir)

	first := startSink(t, cfg, src)
	require.Eventually(t, func() bool { return first.s.Position("a") >= 100 }, 20*time.Second, time.Millisecond)
	first.stop()
	pos := first.s.Position("a")
	files := testutil.ToFloat64(first.s.m.files)
	require.Greater(t, files, 2.0, "MaxBytes rotates files")

	// A crash in the middle of a file leaves its open file behind.
	leftover := filepath.Join(dir, openName("a", pos+1))
	require.NoError(t, os.WriteFile(leftover, []byte("torn gzip"), 0o644))

	src.Add("a", 200, 1e18)
	second := startSink(t, cfg, src)
	require.Eventually(t, at(second.s, "a", 500), 20*time.Second, time.Millisecond)
	require.Eventually(t, at(second.s, "b/c.d", 40), 20*time.Second, time.Millisecond)
	second.stop()
	_, err := os.Stat(leftover)
	require.ErrorIs(t, err, os.ErrNotExist, "the crash's open file is deleted and its events written again")

	requireExactlyOnce(t, dir, src, "a")
	requireExactlyOnce(t, dir, src, "b/c.d")
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		_, _, _, ok := ParseFileName(e.Name())
		require.True(t, ok, "only finished files stay after a clean stop: %s", e.Name())
	}
}

func TestFilesRotateByAgeWhenTheWorldIsQuiet(t *testing.T) {
	src := newFakeSource()
	src.Add("a", 5, 1e18)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.MaxBytes = 1 << 30
	cfg.MaxAge = 20 * time.Millisecond
	s := startSink(t, cfg, src)
	require.Eventually(t, at(s.s, "a", 5), 20*time.Second, time.Millisecond, "a quiet world's file is finished after MaxAge")
	src.Add("a", 3, 1e18)
	require.Eventually(t, at(s.s, "a", 8), 20*time.Second, time.Millisecond)
	s.stop()
	requireExactlyOnce(t, dir, src, "a")
}

func TestFilesOnlyForTheWorldsThisNodeLeadsAndSelects(t *testing.T) {
	src := newFakeSource()
	src.Add("led", 10, 1e18)
	src.Add("other", 10, 1e18)
	src.Add("unselected", 10, 1e18)
	src.SetLeads("other", false)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Worlds = []string{"led", "other"}
	s := startSink(t, cfg, src)
	require.Eventually(t, func() bool { return len(readFiles(t, dir, "led")) == 10 }, 20*time.Second, time.Millisecond)
	s.stop() // finishes the open file
	require.Empty(t, readFiles(t, dir, "other"))
	require.Empty(t, readFiles(t, dir, "unselected"))

	src.SetLeads("other", true)
	s = startSink(t, cfg, src)
	require.Eventually(t, func() bool { return len(readFiles(t, dir, "other")) == 10 }, 20*time.Second, time.Millisecond)
	s.stop()
	requireExactlyOnce(t, dir, src, "led")
	requireExactlyOnce(t, dir, src, "other")
}

func TestFilesRetryAfterAWriteFailure(t *testing.T) {
	src := newFakeSource()
	src.Add("a", 50, 1e18)
	dir := filepath.Join(t.TempDir(), "out")
	cfg := testConfig(dir)
	s, err := New(cfg, src, nil)
	require.NoError(t, err)
	require.NoError(t, os.Remove(dir)) // the directory vanished
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.m.failures.WithLabelValues(failWrite)) >= 2 }, 20*time.Second, time.Millisecond)
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.Eventually(t, func() bool { return s.Position("a") == 50 || len(readFiles(t, dir, "a")) > 0 }, 20*time.Second, time.Millisecond)
	cancel()
	<-done
	requireExactlyOnce(t, dir, src, "a")
}

func TestFilesWaitOnArchiveGap(t *testing.T) {
	src := newFakeSource()
	src.Add("a", 10, 1e18)
	src.SetLow("a", 5)
	dir := t.TempDir()
	s := startSink(t, testConfig(dir), src)
	require.Eventually(t, func() bool { return testutil.ToFloat64(s.s.m.failures.WithLabelValues(failFeed)) >= 2 }, 20*time.Second, time.Millisecond)
	s.stop()
	require.Empty(t, readFiles(t, dir, "a"), "nothing after a gap is written: a reader would miss events silently")
}

func TestFileNamesRoundTripAndRejectOthers(t *testing.T) {
	for _, w := range []string{"a", "arena-1_x", "b/c.d", "..", "%", "wörld", "a.00000000000000000001-00000000000000000002"} {
		name := FileName(w, 7, 9)
		require.NotContains(t, name[:len(name)-len(suffix)], "/")
		world, first, last, ok := ParseFileName(name)
		require.True(t, ok, name)
		require.Equal(t, w, world)
		require.Equal(t, uint64(7), first)
		require.Equal(t, uint64(9), last)
	}
	for _, name := range []string{
		"a.ndjson.gz", "a.1-2.ndjson", ".open.a.00000000000000000001.ndjson.gz", "a.2-1.ndjson.gz",
		"a.0-1.ndjson.gz", "a.x-2.ndjson.gz", "a.1-y.ndjson.gz", "a.12.ndjson.gz", "a%2.1-2.ndjson.gz", "a%2e.1-2.ndjson.gz",
	} {
		_, _, _, ok := ParseFileName(name)
		require.False(t, ok, name)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig(t.TempDir())
	require.NoError(t, ok.Validate())
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"no dir":      {func(c *Config) { c.Dir = "" }, "Dir"},
		"empty world": {func(c *Config) { c.Worlds = []string{""} }, "empty world"},
		"max bytes":   {func(c *Config) { c.MaxBytes = 0 }, "max bytes"},
		"max age":     {func(c *Config) { c.MaxAge = 0 }, "max age"},
		"interval":    {func(c *Config) { c.CheckInterval = 0 }, "check interval"},
		"retry":       {func(c *Config) { c.RetryMin = 0 }, "RetryMin"},
		"logger":      {func(c *Config) { c.Logger = nil }, "Logger"},
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
