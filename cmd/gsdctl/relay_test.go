package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/syncbuf"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a buffer safe for a writer and a reader goroutine.
type syncBuffer = syncbuf.Buffer

// streamLines reads base's event stream of world from seq 1 until seq
// until and returns its bytes.
func streamLines(t *testing.T, base, world string, until uint64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/worlds/"+world+"/events?from=1", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rd := bufio.NewReader(resp.Body)
	var out strings.Builder
	for n := uint64(0); n < until; n++ {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		out.WriteString(line)
	}
	return out.String()
}

// gsdctl relay run serves a node's event stream, line for line, until its
// context ends; then it exits cleanly.
func TestRelayRunServesTheNodesStreamsUntilStopped(t *testing.T) {
	node := startNode(t)
	c := client.New([]string{node})
	ctx := context.Background()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	for i := range 3 {
		_, err := c.Act(ctx, "arena", client.ActionRequest{Player: "p1", Seq: uint64(i + 1),
			Ops: []wire.Op{client.Incr("e1", "score", 1)}})
		require.NoError(t, err)
	}
	rctx, stop := context.WithCancel(ctx)
	var out, errOut syncBuffer
	done := make(chan int, 1)
	prof := filepath.Join(t.TempDir(), "relay.pprof")
	go func() {
		done <- run(rctx, []string{"--addr", node, "relay", "run", "--listen", "127.0.0.1:0", "--cpuprofile", prof}, strings.NewReader(""), &out, &errOut)
	}()
	listening := regexp.MustCompile(`relay listening on (\S+), following http://` + regexp.QuoteMeta(node))
	var addr string
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 20*time.Second, 5*time.Millisecond, "stdout: %s stderr: %s", &out, &errOut)
	base := "http://" + addr
	require.Equal(t, streamLines(t, "http://"+node, "arena", 3), streamLines(t, base, "arena", 3))
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `gsd_relay_upstream_seq{world="arena"} 3`)
	stop()
	select {
	case code := <-done:
		require.Equal(t, 0, code, "stderr: %s", &errOut)
	case <-time.After(20 * time.Second):
		t.Fatal("gsdctl relay run did not stop")
	}
	fi, err := os.Stat(prof)
	require.NoError(t, err)
	require.Positive(t, fi.Size(), "--cpuprofile wrote the relay's profile when it stopped")
}

func TestRelayRunRefusesBadFlags(t *testing.T) {
	notAKey := filepath.Join(t.TempDir(), "bad.pub")
	require.NoError(t, os.WriteFile(notAKey, []byte("not a key\n"), 0o600))
	for _, args := range [][]string{
		{"relay", "run", "--token", "a", "--token-file", "f"},
		{"relay", "run", "--upstream", "ftp://x"},
		{"relay", "run", "--max-viewers", "0"},
		{"relay", "run", "--token-file", "/nonexistent/token"},
		{"relay", "run", "--audit-key", "/nonexistent/key.pub"},
		{"relay", "run", "--audit-key", notAKey},
		{"relay", "run", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "x.pprof")},
	} {
		code, _, errOut := ctl(t, "", args...)
		require.Equal(t, 1, code, "%v", args)
		require.Contains(t, errOut, "gsdctl: ", "%v", args)
		require.Contains(t, errOut, "Run 'gsdctl --help'", fmt.Sprint(args))
	}
}

// gsdctl bench spectator-influx --relays puts the spectators on relays
// it runs, and reports the bytes the voters sent them.
func TestBenchSpectatorInfluxOnRelays(t *testing.T) {
	addr := startNode(t)
	out := filepath.Join(t.TempDir(), "r.json")
	stdout := mustRun(t, "--addr", addr, "bench", "--quiet", "--duration", "300ms", "--warmup", "50ms",
		"--players", "10", "--items", "3", "--rate", "200", "--batch", "4", "--conns", "2", "--observers", "1",
		"--spectators", "2", "--ramp", "50ms", "--relays", "1", "--out", out, "spectator-influx")
	require.Contains(t, stdout, "spectator-influx")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(b), `"voter_bytes_per_s_to_relays"`)
	require.Contains(t, string(b), `"relays": 1`)
	require.Nil(t, benchRelays(0))
	_, _, err = benchRelays(1)(context.Background(), nil)
	require.Error(t, err)
}
