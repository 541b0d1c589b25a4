package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseConfigOverlaysTheDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{
		"Fields": {"Hit": "health", "Wins": ""},
		"reaction": {"median": "120ms", "Window": 3000000000},
		"Lockstep": {"Tick": "10ms", "MinTogether": 20},
		"Scan": "2s",
		"Economy": {"Window": "2s"},
		"Funnel": {"MinTransfers": 12}
	}`))
	require.NoError(t, err)
	want := DefaultConfig()
	want.Fields.Hit, want.Fields.Wins = "health", ""
	want.Reaction.Median, want.Reaction.Window = 120*time.Millisecond, 3*time.Second
	want.Lockstep.Tick, want.Lockstep.MinTogether = 10*time.Millisecond, 20
	want.Scan, want.Economy.Window = 2*time.Second, 2*time.Second
	want.Funnel.MinTransfers = 12
	require.Equal(t, want, c)

	c, err = ParseConfig([]byte(`{}`))
	require.NoError(t, err)
	require.Equal(t, DefaultConfig(), c)
}

func TestParseConfigRefusesWhatItCannotRun(t *testing.T) {
	for name, in := range map[string]string{
		"not json":        `{`,
		"unknown key":     `{"Speeds": {}}`,
		"unknown nested":  `{"Speed": {"Fast": 1}}`,
		"bad duration":    `{"Lockstep": {"Tick": "soon"}}`,
		"wrong type":      `{"Reaction": 5}`,
		"duration object": `{"Scan": {}}`,
		"invalid":         `{"Speed": {"Share": 2}}`,
		"renamed":         `{"Reaction": {"Fast": "150ms"}}`, // the statistic before corpus F
	} {
		_, err := ParseConfig([]byte(in))
		require.ErrorIs(t, err, ErrConfig, name)
	}
}
