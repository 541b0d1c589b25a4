package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/sink/files"
	"github.com/gsd-dev/gsd/sink/webhook"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestRunWithWebhookURLPostsSignedBatchesOfSelectedWorlds(t *testing.T) {
	t.Parallel()
	secret := "a-webhook-secret-for-tests"
	var mu sync.Mutex
	seqs := map[string][]uint64{}
	incs := map[string]map[int64]bool{} // per world, the incarnations of its batches
	bad := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b webhook.Batch
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get(webhook.HeaderKeyID) != "studio-1" || !webhook.Verify([]byte(secret), body, r.Header.Get(webhook.HeaderSignature)) ||
			json.Unmarshal(body, &b) != nil {
			bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		for _, ev := range b.Events {
			seqs[ev.World] = append(seqs[ev.World], ev.Seq)
		}
		if incs[b.World] == nil {
			incs[b.World] = map[int64]bool{}
		}
		incs[b.World][b.Incarnation] = true
	}))
	defer srv.Close()
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret+"\n"), 0o600))

	dir := t.TempDir()
	n := startNode(t, "wh1", dir, "--webhook-url", srv.URL, "--webhook-worlds", "arena",
		"--webhook-key-id", "studio-1", "--webhook-secret-file", secretFile, "--export-positions-every", "1")
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	require.NoError(t, c.CreateWorld(ctx, "lobby", wire.Rules{}))
	for i := range 5 {
		_, err := c.Act(ctx, "arena", incr("p1", uint64(i+1), "e1", 1))
		require.NoError(t, err)
		_, err = c.Act(ctx, "lobby", incr("p1", uint64(i+1), "e1", 1))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seqs["arena"]) >= 5
	}, 30*time.Second, 20*time.Millisecond)
	// The position moves once the exporter has read the 2xx, which can be
	// after the receiver saw the batch: wait for it before stopping.
	ws, err := c.Worlds(ctx)
	require.NoError(t, err)
	var listed uint64 // arena's incarnation as GET /v1/worlds shows it
	for _, w := range ws {
		if w.ID == "arena" {
			listed = w.Incarnation
		}
	}
	positions := filepath.Join(dir, "webhook-positions.json")
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(positions)
		return err == nil && strings.Contains(string(b), `"arena":5`)
	}, 30*time.Second, 20*time.Millisecond)
	// The position is replicated too, in the reserved world gsd.sinks.
	require.Eventually(t, func() bool {
		ws, err := c.Worlds(ctx)
		for _, w := range ws {
			if w.ID == "gsd.sinks" {
				return err == nil && w.Seq > 0
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 0, n.stop(t))

	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, bad, "every batch is signed with the configured key")
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, seqs["arena"])
	require.Empty(t, seqs["lobby"], "--webhook-worlds leaves other worlds out")
	cp, err := os.ReadFile(positions)
	require.NoError(t, err)
	require.Len(t, incs["arena"], 1, "one incarnation of arena")
	var inc int64
	for i := range incs["arena"] {
		inc = i
	}
	require.NotZero(t, inc)
	require.Equal(t, int64(listed), inc, "the batches name arena's incarnation as the listing does")
	require.JSONEq(t, fmt.Sprintf(`{"version":1,"positions":{"arena":5},"incarnations":{"arena":%d}}`, inc), string(cp))
	requireContains(t, n.stderr.String(), "webhook export on", "export started")
}

func TestRunWithExportDirWritesGzipNDJSONFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, "fx1", dir, "--export-dir", "analytics", "--export-worlds", "arena", "--export-max-age", "50ms")
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	require.NoError(t, c.CreateWorld(ctx, "lobby", wire.Rules{}))
	for i := range 4 {
		_, err := c.Act(ctx, "arena", incr("p1", uint64(i+1), "e1", 1))
		require.NoError(t, err)
		_, err = c.Act(ctx, "lobby", incr("p1", uint64(i+1), "e1", 1))
		require.NoError(t, err)
	}
	out := filepath.Join(dir, "analytics")
	require.Eventually(t, func() bool { return len(exportedSeqs(t, out)) == 4 }, 30*time.Second, 20*time.Millisecond,
		"--export-max-age finishes the file of a quiet world")
	require.Equal(t, 0, n.stop(t))
	require.Equal(t, []uint64{1, 2, 3, 4}, exportedSeqs(t, out), "every action's event once, in order")
	requireContains(t, n.stderr.String(), "files export on")
}

// exportedSeqs reads the seqs in dir's finished export files, all of
// them of world arena.
func exportedSeqs(t *testing.T, dir string) []uint64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var seqs []uint64
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".open.") {
			continue
		}
		world, _, _, ok := files.ParseFileName(e.Name())
		require.True(t, ok, "unexpected file %s", e.Name())
		require.Equal(t, "arena", world, "--export-worlds leaves other worlds out")
		f, err := os.Open(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		gz, err := gzip.NewReader(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(gz)
		for sc.Scan() {
			var ev wire.Event
			require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
			seqs = append(seqs, ev.Seq)
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
	}
	return seqs
}

func TestRunRejectsBadWebhookFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none")
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("a-webhook-secret-for-tests"), 0o600))
	shortFile := filepath.Join(t.TempDir(), "short")
	require.NoError(t, os.WriteFile(shortFile, []byte("short"), 0o600))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no secret", []string{"--webhook-url", "http://127.0.0.1:9/h"}, "needs a secret"},
		{"missing secret file", []string{"--webhook-url", "http://127.0.0.1:9/h", "--webhook-secret-file", missing}, "--webhook-secret-file"},
		{"worlds without url", []string{"--webhook-worlds", "a"}, "need --webhook-url"},
		{"export worlds without dir", []string{"--export-worlds", "a"}, "--export-worlds needs --export-dir"},
		{"bad export max bytes", []string{"--export-dir", "x", "--export-max-bytes", "0"}, "max bytes"},
		{"bad url", []string{"--webhook-url", "ftp://x/h", "--webhook-secret-file", secretFile}, "--webhook-*"},
		{"short secret", []string{"--webhook-url", "http://127.0.0.1:9/h", "--webhook-secret-file", shortFile}, "at least 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, io.Discard, &stderr)
			require.Equal(t, 1, code, stderr.String())
			requireContains(t, stderr.String(), tc.want)
		})
	}
}
