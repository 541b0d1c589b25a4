package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// rootFlags returns gsd's real flag set, parsed from args.
func rootFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	cmd := newRootCmd(context.Background(), io.Discard)
	fs := cmd.Flags()
	require.NoError(t, fs.Parse(args))
	return fs
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gsd.toml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func get(t *testing.T, fs *pflag.FlagSet, name string) string {
	t.Helper()
	f := fs.Lookup(name)
	require.NotNil(t, f, name)
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return strings.Join(sv.GetSlice(), ",")
	}
	return f.Value.String()
}

func TestConfigPrecedenceIsFlagThenEnvThenFileThenDefault(t *testing.T) {
	path := writeConfig(t, `
http-addr = "10.0.0.1:7070"     # file only... but the flag wins below
raft-addr = "10.0.0.1:7071"     # the environment wins
region = "eu-west"              # file wins over the default
join = ["n1:7070", "n2:7070"]
session-expiry = "10m"
no-sync = true
snapshot-threshold = 100
play-interest-cell = 2.5
`)
	fs := rootFlags(t, "--http-addr", "127.0.0.9:7070")
	require.NoError(t, applyConfig(fs, path, envOf(map[string]string{
		"GSD_RAFT_ADDR": "10.0.0.2:7071",
		"GSD_LOG_LEVEL": "debug", // not in the file: env over default
	})))
	require.Equal(t, "127.0.0.9:7070", get(t, fs, "http-addr"), "flag > file")
	require.Equal(t, "10.0.0.2:7071", get(t, fs, "raft-addr"), "env > file")
	require.Equal(t, "debug", get(t, fs, "log-level"), "env > default")
	require.Equal(t, "eu-west", get(t, fs, "region"), "file > default")
	require.Equal(t, "n1:7070,n2:7070", get(t, fs, "join"))
	require.Equal(t, "10m0s", get(t, fs, "session-expiry"))
	require.Equal(t, "true", get(t, fs, "no-sync"))
	require.Equal(t, "100", get(t, fs, "snapshot-threshold"))
	require.Equal(t, "2.5", get(t, fs, "play-interest-cell"))
	require.Equal(t, "text", get(t, fs, "log-format"), "default when nobody sets it")
}

func TestConfigListFromTheEnvironmentIsCommaSeparated(t *testing.T) {
	fs := rootFlags(t)
	require.NoError(t, applyConfig(fs, "", envOf(map[string]string{"GSD_JOIN": "a:1,b:2"})))
	require.Equal(t, "a:1,b:2", get(t, fs, "join"))
}

func TestConfigRefusesMistakesWithTheKeyAndTheFile(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"unknown key", `http-adr = "x"`, []string{`unknown key "http-adr"`}},
		{"command-line-only key", `print-config = true`, []string{`unknown key "print-config"`}},
		{"table", "[raft-addr]\nhost = \"x\"", []string{`"raft-addr" is a table`}},
		{"bad duration", `session-expiry = 5`, []string{"session-expiry", "missing unit"}},
		{"bad bool", `no-sync = "maybe"`, []string{"no-sync"}},
		{"array for a scalar", `region = ["a"]`, []string{"region", "an array for a flag"}},
		{"datetime", `region = 1979-05-27T07:32:00Z`, []string{"region", "unsupported value"}},
		{"datetime in an array", `join = [1979-05-27T07:32:00Z]`, []string{"join", "unsupported value"}},
		{"not TOML", `region = `, []string{"gsd.toml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.body)
			err := applyConfig(rootFlags(t), path, envOf(nil))
			require.Error(t, err)
			requireContains(t, err.Error(), tc.want...)
		})
	}
	err := applyConfig(rootFlags(t), filepath.Join(t.TempDir(), "missing.toml"), envOf(nil))
	require.ErrorIs(t, err, os.ErrNotExist)
	err = applyConfig(rootFlags(t), "", envOf(map[string]string{"GSD_APPLY_TIMEOUT": "soon"}))
	requireContains(t, err.Error(), "$GSD_APPLY_TIMEOUT")
}

func TestPrintConfigIsAConfigFileThatReproducesItselfWithSecretsRedacted(t *testing.T) {
	env := envOf(map[string]string{
		"GSD_PG_SINK_DSN":    "postgres://studio:hunter2@db/gsd",
		"GSD_CLUSTER_SECRET": "0123456789abcdef0123456789abcdef",
	})
	fs := rootFlags(t, "--region", "eu-west", "--join", "a:1,b:2", "--session-expiry", "90s", "--no-sync")
	require.NoError(t, applyConfig(fs, "", env))
	var out bytes.Buffer
	require.NoError(t, printConfig(&out, fs, env))
	s := out.String()
	require.NotContains(t, s, "hunter2")
	require.NotContains(t, s, "0123456789abcdef")
	requireContains(t, s, `# pg-sink-dsn = "<redacted>"`, "# cluster secret: from $GSD_CLUSTER_SECRET",
		`region = "eu-west"`, `join = ["a:1", "b:2"]`, `session-expiry = "1m30s"`, "no-sync = true", "play-queue = 256")

	// Fed back as the config file of a node with nothing else set, it
	// yields the same config.
	fs2 := rootFlags(t)
	require.NoError(t, applyConfig(fs2, writeConfig(t, s), envOf(nil)))
	var again bytes.Buffer
	require.NoError(t, printConfig(&again, fs2, envOf(nil)))
	want := strings.NewReplacer("# pg-sink-dsn = \"<redacted>\"\n", "", "# cluster secret: from $GSD_CLUSTER_SECRET (<redacted>)\n", "").Replace(s)
	got := strings.Replace(again.String(), "pg-sink-dsn = \"\"\n", "", 1)
	require.Equal(t, want, got, "the same config but the secrets, which the file does not carry")
}

func TestRunPrintConfigReadsTheConfigFileAndExits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeConfig(t, "region = \"ap-south\"\ndata-dir = \""+dir+"\"\nsession-expiry = \"2m\"\n")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--config", path, "--print-config", "--http-addr", "127.0.0.1:0"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	requireContains(t, stdout.String(), `region = "ap-south"`, `session-expiry = "2m0s"`, `http-addr = "127.0.0.1:0"`, `data-dir = "`+dir+`"`)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "--print-config starts no node")

	stderr.Reset()
	code = run(context.Background(), []string{"--config", writeConfig(t, `regoin = "x"`), "--print-config"}, io.Discard, &stderr)
	require.Equal(t, 1, code)
	requireContains(t, stderr.String(), `unknown key "regoin"`, "gsd --help")
}

func TestDeployExampleConfigNamesOnlyRealFlags(t *testing.T) {
	fs := rootFlags(t)
	require.NoError(t, applyConfig(fs, filepath.Join("..", "..", "deploy", "gsd.toml.example"), envOf(nil)))
	require.Equal(t, "30m0s", get(t, fs, "session-expiry"))
	require.Equal(t, "10.0.0.2:7070,10.0.0.3:7070", get(t, fs, "join"))
}
