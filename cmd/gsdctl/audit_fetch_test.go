package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/testbin"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// auditNode is a gsd process with an audit key.
type auditNode struct {
	bin, dir, http, raft, key string
	extra                     []string // more flags
	cmd                       *exec.Cmd
	stderr                    bytes.Buffer
}

func (n *auditNode) start(t *testing.T) {
	t.Helper()
	n.stderr.Reset()
	args := []string{"--id", "n1", "--data-dir", n.dir, "--http-addr", n.http, "--raft-addr", n.raft,
		"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--no-sync", "--disk-stall-timeout", "0",
		"--audit-key", n.key, "--audit-sign-interval", "50ms"}
	n.cmd = exec.Command(n.bin, append(args, n.extra...)...)
	n.cmd.Stderr = &n.stderr
	require.NoError(t, n.cmd.Start())
	c := client.New([]string{n.http})
	defer c.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := c.Status(ctx)
		return err == nil && s.LeaderHTTP != ""
	}, time.Minute, 20*time.Millisecond, "gsd did not lead: %s", &n.stderr)
}

func (n *auditNode) stop(t *testing.T) {
	t.Helper()
	if n.cmd == nil {
		return
	}
	require.NoError(t, n.cmd.Process.Signal(os.Interrupt))
	require.NoError(t, n.cmd.Wait(), "gsd: %s", n.stderr.String())
	n.cmd = nil
}

// startAuditNode starts a gsd process in dir/data with a new audit key
// (dir/gsd-audit.key and .pub) and extra flags, on httpAddr and raftAddr
// (free ones when ""), stopped when the test ends; it returns the node
// and the key files' prefix.
func startAuditNode(t *testing.T, dir, httpAddr, raftAddr string, extra ...string) (*auditNode, string) {
	t.Helper()
	keyPrefix := filepath.Join(dir, "gsd-audit")
	mustRun(t, "audit", "keygen", "gsd-audit", "--out", keyPrefix)
	if httpAddr == "" {
		httpAddr, raftAddr = freeAddr(t), freeAddr(t)
	}
	n := &auditNode{bin: testbin.GSD(t), dir: filepath.Join(dir, "data"), http: httpAddr, raft: raftAddr, key: keyPrefix + ".key", extra: extra}
	t.Setenv("GOCOVERDIR", testbin.CoverDir(t))
	n.start(t)
	t.Cleanup(func() { n.stop(t) })
	return n, keyPrefix
}

// fetchAt fetches the world's files (with sign, a checkpoint signed now;
// else the node's newest) until its checkpoint covers size events, and
// returns the checkpoint.
func fetchAt(t *testing.T, addr, prefix string, size int64, pub string, sign bool) audit.Checkpoint {
	t.Helper()
	return fetchWorldAt(t, addr, "arena", prefix, size, pub, sign)
}

// fetchWorldAt is fetchAt of world; a fetch that fails (an archive gap
// of a world that moved, until its new home copied the events before the
// move) is tried again.
func fetchWorldAt(t *testing.T, addr, world, prefix string, size int64, pub string, sign bool) audit.Checkpoint {
	t.Helper()
	var cp audit.Checkpoint
	args := []string{"--addr", addr, "audit", "fetch", world, "--out", prefix}
	if sign {
		args = append(args, "--sign")
	}
	require.Eventually(t, func() bool {
		if code, _, _ := ctl(t, "", args...); code != 0 {
			return false
		}
		b, err := os.ReadFile(prefix + ".checkpoint")
		require.NoError(t, err)
		v, err := os.ReadFile(pub)
		require.NoError(t, err)
		k, err := audit.ParseVerifyingKey(string(v))
		require.NoError(t, err)
		cp, _, err = audit.OpenCheckpoint(b, k)
		require.NoError(t, err)
		return cp.Size == size
	}, time.Minute, 20*time.Millisecond)
	return cp
}

// The must-show over a real node: events played, the match
// fetched (signed checkpoint, export, leaf hashes) and verified; a
// tampered export is refused with the changed event named; and the
// node's tree survives a restart.
func TestAuditFetchedMatchVerifiesAndATamperedEventIsNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gsd process")
	}
	dir := t.TempDir()
	n, keyPrefix := startAuditNode(t, dir, "", "")

	c := client.New([]string{n.http})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	play := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			_, err := c.Act(ctx, "arena", client.ActionRequest{Player: fmt.Sprintf("p%d", seq%3), Seq: seq,
				Ops: []wire.Op{client.Incr("score", fmt.Sprintf("p%d", seq%3), int64(seq)), client.Set("ball", "x", wire.Int(int64(seq)))}})
			require.NoError(t, err)
		}
	}
	play(1, 20)

	prefix := filepath.Join(dir, "match")
	cp := fetchAt(t, n.http, prefix, 20, keyPrefix+".pub", true)
	// The node signs on its own too, at its interval: the newest
	// checkpoint reaches the same tree.
	require.Equal(t, cp, fetchAt(t, n.http, filepath.Join(dir, "newest"), 20, keyPrefix+".pub", false))
	out := mustRun(t, "audit", "verify", "--log", prefix+".ndjson", "--checkpoint", prefix+".checkpoint",
		"--leaves", prefix+".leaves", "--key", keyPrefix+".pub")
	require.Contains(t, out, "log: 20 events")
	require.Contains(t, out, "ok")

	// Tamper with event 7's content: verify names it.
	b, err := os.ReadFile(prefix + ".ndjson")
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	require.Contains(t, lines[6], `"seq":7`)
	lines[6] = strings.Replace(lines[6], `"value":7`, `"value":70`, 1)
	require.NoError(t, os.WriteFile(prefix+".ndjson", []byte(strings.Join(lines, "\n")), 0o644))
	code, stdout, stderr := ctl(t, "", "audit", "verify", "--log", prefix+".ndjson", "--checkpoint", prefix+".checkpoint",
		"--leaves", prefix+".leaves", "--key", keyPrefix+".pub")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "modified: seq 7")
	require.Contains(t, stderr, "does not match the checkpoint")

	// The tree survives a restart: the same root at 20 events, then it
	// grows consistently with it.
	n.stop(t)
	n.start(t)
	play(21, 25)
	later := fetchAt(t, n.http, filepath.Join(dir, "later"), 25, keyPrefix+".pub", true)
	proof, err := c.AuditConsistency(ctx, "arena", 20, 25)
	require.NoError(t, err)
	require.NoError(t, audit.CheckConsistency(cp, later, toHashes(proof.Proof)))
	out = mustRun(t, "audit", "verify", "--log", filepath.Join(dir, "later.ndjson"), "--checkpoint", filepath.Join(dir, "later.checkpoint"),
		"--checkpoint", prefix+".checkpoint", "--key", keyPrefix+".pub")
	require.Contains(t, out, "log: 25 events")
	n.stop(t)
	require.NotContains(t, n.stderr.String(), "level=ERROR")
}

func toHashes(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = tlog.Hash(h)
	}
	return out
}

func TestAuditFetchRefusesWhatIsNotASignedCheckpointAndWritesAnEmptyLog(t *testing.T) {
	answer := "not a note"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(answer)) }))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	prefix := filepath.Join(t.TempDir(), "m")
	code, _, stderr := ctl(t, "", "--addr", addr, "audit", "fetch", "arena", "--out", prefix)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "bad checkpoint")
	_, err := os.Stat(prefix + ".checkpoint")
	require.True(t, os.IsNotExist(err), "nothing written")

	// A world without events: its checkpoint of size 0, an empty log and
	// no leaves (an empty tree's root is the hash of nothing).
	answer = "arena\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— k AAAA\n"
	out := mustRun(t, "--addr", addr, "audit", "fetch", "arena", "--out", prefix)
	require.Contains(t, out, "world arena, 0 events")
	for _, ext := range []string{".ndjson", ".leaves"} {
		b, err := os.ReadFile(prefix + ext)
		require.NoError(t, err)
		require.Empty(t, b)
	}
}
