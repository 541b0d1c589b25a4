package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// gsdctl relay add, list and remove keep the registry; list --world
// answers the relays to watch a world through.
func TestRelayAddListRemove(t *testing.T) {
	node := startNode(t)
	require.NoError(t, client.New([]string{node}).CreateWorld(context.Background(), "arena", wire.Rules{}))
	require.Contains(t, mustRun(t, "--addr", node, "relay", "add", "eu-1", "--url", "http://eu-1.example:7080", "--region", "eu", "--capacity", "100"),
		"relay eu-1 registered: http://eu-1.example:7080")
	mustRun(t, "--addr", node, "relay", "add", "lobby-1", "--url", "http://lobby.example", "--worlds", "lobby, hall")
	out := mustRun(t, "--addr", node, "relay", "list")
	require.Regexp(t, `eu-1\s+http://eu-1.example:7080\s+eu\s+all\s+0\s+100\s+-\s+ok`, out)
	require.Regexp(t, `lobby-1\s+http://lobby.example\s+-\s+lobby,hall\s+0\s+-\s+-\s+ok`, out)
	var rs []client.Relay
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "--addr", node, "-o", "json", "relay", "list", "--world", "arena")), &rs))
	require.Len(t, rs, 1)
	require.Equal(t, "eu-1", rs[0].ID)
	var one client.Relay
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "--addr", node, "-o", "json", "relay", "add", "x", "--url", "http://x")), &one))
	require.Equal(t, "x", one.ID)

	require.Contains(t, mustRun(t, "--addr", node, "relay", "remove", "eu-1"), "relay eu-1 removed")
	require.NotContains(t, mustRun(t, "--addr", node, "relay", "list"), "eu-1")
	code, _, errOut := ctl(t, "", "--addr", node, "relay", "remove", "eu-1")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not_found")
	code, _, errOut = ctl(t, "", "--addr", node, "relay", "add", "y")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--url is required")
	code, _, errOut = ctl(t, "", "--addr", node, "relay", "add", "bad id", "--url", "http://y")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "malformed")
	code, _, _ = ctl(t, "", "--addr", node, "relay", "list", "--world", "nowhere")
	require.Equal(t, 1, code)
}

// gsdctl relay run --register puts the relay in the registry while it
// runs, with its heartbeat, and removes it at exit.
func TestRelayRunRegistersItselfWhileItRuns(t *testing.T) {
	node := startNode(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr", node, "relay", "run", "--listen", "127.0.0.1:0", "--register", "--region", "eu",
			"--heartbeat", "20ms", "--max-viewers", "50"}, strings.NewReader(""), &out, &errOut)
	}()
	registering := regexp.MustCompile(`registering as relay (\S+) at (\S+)`)
	var id, url string
	require.Eventually(t, func() bool {
		m := registering.FindStringSubmatch(out.String())
		if m != nil {
			id, url = m[1], m[2]
		}
		return m != nil
	}, 20*time.Second, 5*time.Millisecond, "stdout: %s stderr: %s", &out, &errOut)
	require.Regexp(t, `^127\.0\.0\.1-\d+$`, id)
	c := client.New([]string{node})
	defer c.Close()
	var first int64
	require.Eventually(t, func() bool {
		rs, err := c.Relays(context.Background())
		if err != nil || len(rs) != 1 {
			return false
		}
		r := rs[0]
		if r.ID != id || r.URL != url || r.Region != "eu" || r.Capacity != 50 || !r.Live {
			t.Errorf("registered as %+v, want id %s at %s, region eu, capacity 50, live", r, id, url)
			return true
		}
		if first == 0 {
			first = r.HeartbeatMs
		}
		return r.HeartbeatMs > first // a later heartbeat came
	}, 20*time.Second, 10*time.Millisecond)
	stop()
	select {
	case code := <-done:
		require.Equal(t, 0, code, "stderr: %s", &errOut)
	case <-time.After(20 * time.Second):
		t.Fatal("gsdctl relay run did not stop")
	}
	rs, err := c.Relays(context.Background())
	require.NoError(t, err)
	require.Empty(t, rs, "removed at exit")
}

func TestRelayRegistrationFlags(t *testing.T) {
	for _, args := range [][]string{
		{"relay", "run", "--register", "--heartbeat", "0"},
		{"relay", "run", "--register", "--listen", ":7080"},
		{"relay", "run", "--register", "--listen", "0.0.0.0:7080"},
		{"relay", "run", "--watch-segments-kept", "0"},
	} {
		code, _, errOut := ctl(t, "", args...)
		require.Equal(t, 1, code, "%v", args)
		require.Contains(t, errOut, "Run 'gsdctl --help'", "%v", args)
	}
	reg := registration{on: true, heartbeat: time.Second, url: "https://relay.example:7080/x"}
	require.NoError(t, reg.validate(":7080"), "a public URL given")
	reg.complete("[::]:7080")
	require.Equal(t, "relay.example-7080-x", reg.id)
	require.Equal(t, "https://relay.example:7080/x", reg.url)
	require.NoError(t, (&registration{}).validate(":1"), "not registering")
}
