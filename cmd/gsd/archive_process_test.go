package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// httpGet returns the body of a GET to a node's HTTP address.
func httpGet(t *testing.T, addr, path string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s: %s", path, b)
	return b
}

// eventLines reads the first n NDJSON lines of world's event stream from
// seq 1 on a node: the bytes a client gets.
func eventLines(t *testing.T, addr, world string, n int) [][]byte {
	t.Helper()
	out, err := readEventLines(addr, world, n)
	require.NoError(t, err)
	return out
}

// readEventLines is eventLines' read: an error when the stream ends (an
// archive_gap, say: its last line) before n events.
func readEventLines(addr, world string, n int) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/worlds/"+world+"/events?from=1", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("events of %s: status %d", world, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	var out [][]byte
	var last []byte
	for len(out) < n && sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) > 0 && bytes.Contains(line, []byte(`"seq"`)) {
			out = append(out, append([]byte(nil), line...))
		} else if len(line) > 0 {
			last = append([]byte(nil), line...)
		}
	}
	if len(out) < n {
		return out, fmt.Errorf("stream of %s ended after %d events (%v): %s", world, len(out), sc.Err(), last)
	}
	return out, nil
}

// cutArchive cuts a stopped node's archive file to a third, its clean
// marker left in place.
func cutArchive(t *testing.T, path string) {
	t.Helper()
	require.FileExists(t, path+".clean")
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, info.Size()/3))
}

// actRange acts on world once per seq from first to last.
func actRange(ctx context.Context, t *testing.T, c *client.Client, world string, first, last uint64) {
	t.Helper()
	for seq := first; seq <= last; seq++ {
		_, err := c.Act(ctx, world, incr("p1", seq, "e1", int64(seq)))
		require.NoError(t, err)
	}
}

// archiveStatus is GET /v1/node/archive's answer.
type archiveStatus struct {
	MissingEvents uint64            `json:"missing_events"`
	Refilled      uint64            `json:"refilled"`
	Refused       uint64            `json:"refused"`
	Verified      map[string]uint64 `json:"verified"`
}

// waitRefilled waits until node n refilled what its archive lacked and
// streams world's first events events from seq 1: a check that ran
// before the restarted node caught up (before its feed learned the seqs
// its snapshot restore skipped) finds nothing missing past what it knows,
// and only the next check finds the rest (archive_gap until then).
func waitRefilled(t *testing.T, n *testNode, world string, events int) archiveStatus {
	t.Helper()
	var st archiveStatus
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal(httpGet(t, n.http, "/v1/node/archive"), &st))
		if st.Refilled == 0 || st.MissingEvents != 0 {
			return false
		}
		_, err := readEventLines(n.http, world, events)
		return err == nil
	}, time.Minute, 20*time.Millisecond)
	return st
}

// The Must show with real nodes: a follower's archive truncated
// while it is stopped is detected at restart, refilled from the other
// nodes and verified against its audit tree, and the node then streams
// every event from seq 1 byte for byte as another node does.
func TestTruncatedArchiveIsRefilledFromPeersAfterRestart(t *testing.T) {
	t.Parallel()
	flags := []string{"--snapshot-threshold", "16", "--trailing-logs", "4", "--archive-refill-interval", "200ms"}
	n1 := startNode(t, "n1", t.TempDir(), flags...)
	n1.waitLeader(t)
	dir2 := t.TempDir()
	n2 := startNode(t, "n2", dir2, append(flags, "--join", n1.http)...)
	n3 := startNode(t, "n3", t.TempDir(), append(flags, "--join", n1.http)...)
	n1.waitStatus(t, "has three voters", func(s client.Status) bool { return len(s.Servers) == 3 })
	n2.waitLeader(t)
	n3.waitLeader(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := n1.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	actRange(ctx, t, c, "arena", 1, 60)
	// n2's audit tree holds all 60 (it survives; the archive will not).
	require.Eventually(t, func() bool {
		return bytes.Contains(httpGet(t, n2.http, "/metrics"), []byte("gsd_audit_events 60\n"))
	}, time.Minute, 20*time.Millisecond)
	resp, err := http.Post("http://"+n2.http+"/v1/cluster/snapshot", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Zero(t, n2.stop(t))

	// The archive file cut to a third while the node is stopped (its clean
	// marker stays): bbolt would fault reading past the end.
	cutArchive(t, filepath.Join(dir2, "events.db"))
	actRange(ctx, t, c, "arena", 61, 70)

	n2 = startNodeAt(t, "n2", dir2, n2.http, n2.raft, flags...)
	n2.waitLeader(t)
	st := waitRefilled(t, n2, "arena", 70)
	require.Equal(t, st.Refilled, st.Verified["audit"], "every refilled event verified against the audit tree")
	requireContains(t, n2.stderr.String(), "event archive is corrupt", "event archive lacks events", "event archive refilled")
	require.Equal(t, eventLines(t, n3.http, "arena", 70), eventLines(t, n2.http, "arena", 70), "byte for byte")
	metrics := string(httpGet(t, n2.http, "/metrics"))
	requireContains(t, metrics, `gsd_archive_missing_events{group="0"} 0`, `gsd_archive_refill_refused_total{group="0"} 0`)
}
