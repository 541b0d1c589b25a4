package pg

import (
	"math"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestConfigValidateNamesEachBadField(t *testing.T) {
	ok := DefaultConfig()
	ok.DSN = "postgres://u@localhost/db"
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no DSN", func(c *Config) { c.DSN = "" }, "DSN is required"},
		{"bad DSN", func(c *Config) { c.DSN = "postgres://u@h:notaport/db" }, "DSN:"},
		{"bad schema", func(c *Config) { c.Schema = "Robert'); DROP" }, "schema"},
		{"empty schema", func(c *Config) { c.Schema = "" }, "schema"},
		{"empty world", func(c *Config) { c.Worlds = []string{"a", ""} }, "empty world"},
		{"batch 0", func(c *Config) { c.BatchSize = 0 }, "batch size"},
		{"batch huge", func(c *Config) { c.BatchSize = maxBatch + 1 }, "batch size"},
		{"negative linger", func(c *Config) { c.Linger = -time.Second }, "linger"},
		{"no check interval", func(c *Config) { c.CheckInterval = 0 }, "check interval"},
		{"retry", func(c *Config) { c.RetryMin, c.RetryMax = time.Second, time.Millisecond }, "RetryMin"},
		{"conns", func(c *Config) { c.MaxConns = 0 }, "MaxConns"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "Timeout"},
		{"logger", func(c *Config) { c.Logger = nil }, "Logger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
			_, err := New(c, newFakeSource(), nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestNewNeedsASourceAndFreeMetricNames(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DSN = "host=/nonexistent"
	_, err := New(cfg, nil, nil)
	require.ErrorContains(t, err, "no source")
	reg := prometheus.NewRegistry()
	_, err = New(cfg, newFakeSource(), reg)
	require.NoError(t, err)
	_, err = New(cfg, newFakeSource(), reg)
	require.ErrorContains(t, err, "metrics")
}

func TestJSONNoNULRewritesOnlyTheNULEscape(t *testing.T) {
	for in, want := range map[string]string{
		`"abc"`:                 `"abc"`,
		`"a\u0000b"`:            `"a\ufffdb"`,
		`"\\u0000"`:             `"\\u0000"`,
		`"\\\u0000"`:            `"\\\ufffd"`,
		`["\u0000","\n\u0000"]`: `["\ufffd","\n\ufffd"]`,
		`"\u00001"`:             `"\ufffd1"`,
		`"x\\u0000\u0000"`:      `"x\\u0000\ufffd"`,
	} {
		require.Equal(t, want, string(jsonNoNUL([]byte(in))), "in %s", in)
	}
	require.Equal(t, `x\`, string(jsonNoNUL([]byte(`x\`))), "a trailing backslash stays")
	require.Equal(t, `\ufffd\`, string(jsonNoNUL([]byte(`\u0000\`))))
}

func TestRowOfRefusesEventsThatDoNotFitBigint(t *testing.T) {
	_, err := RowOf(&fsm.Event{World: "w", Seq: math.MaxInt64 + 1, Status: fsm.StatusApplied})
	require.ErrorContains(t, err, "does not fit")
	r, err := RowOf(&fsm.Event{World: "w", Seq: math.MaxInt64, Index: 1, Status: fsm.StatusRejected, Reason: "r\x00"})
	require.NoError(t, err)
	require.Equal(t, "r\uFFFD", r.Reason)
	require.Empty(t, r.Changes)
}

func TestStoreSourceReportsAnUnknownWorld(t *testing.T) {
	c := newCluster(t, 1)
	src := feed.NewStoreSource(c.nodes[0])
	_, err := src.Subscribe("nope", 1)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	require.True(t, src.Leads("nope"))
	require.Empty(t, src.Worlds())
	_, ok := src.Event("nope", 1)
	require.False(t, ok)
}
