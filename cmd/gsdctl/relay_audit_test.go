package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// Over a real node that signs its audit log: a player's keyframe carries
// the newest signed checkpoint at or before its seq, and a relay run with
// --audit-key verifies the node's checkpoints and serves what it accepted.
func TestKeyframesAndAVerifyingRelayCarryTheNodesCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gsd process")
	}
	dir := t.TempDir()
	n, keyPrefix := startAuditNode(t, dir, "", "")
	pub, err := os.ReadFile(keyPrefix + ".pub")
	require.NoError(t, err)
	key, err := audit.ParseVerifyingKey(string(pub))
	require.NoError(t, err)

	c := client.New([]string{n.http})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := c.Act(ctx, "arena", client.ActionRequest{Player: "p1", Seq: seq, Ops: []wire.Op{client.Incr("e1", "score", 1)}})
		require.NoError(t, err)
	}

	// The node signs every 50ms: a keyframe joined after that carries the
	// checkpoint of the 3 events.
	var joined audit.Checkpoint
	require.Eventually(t, func() bool {
		p, err := c.Play(ctx, "arena", client.PlayOptions{Player: "ann", Keyframe: true})
		require.NoError(t, err)
		defer p.Close()
		kf := p.Keyframe()
		require.NotNil(t, kf)
		if kf.Checkpoint == "" {
			return false
		}
		cp, _, err := audit.OpenCheckpoint([]byte(kf.Checkpoint), key)
		require.NoError(t, err)
		require.LessOrEqual(t, uint64(cp.Size), kf.Seq, "never a checkpoint past the keyframe")
		joined = cp
		return cp.Size == 3
	}, time.Minute, 20*time.Millisecond)

	// What a viewer does with it: a later event is checked against a
	// later checkpoint, and that one against the keyframe's.
	for seq := uint64(4); seq <= 5; seq++ {
		_, err := c.Act(ctx, "arena", client.ActionRequest{Player: "p1", Seq: seq, Ops: []wire.Op{client.Incr("e1", "score", 1)}})
		require.NoError(t, err)
	}
	var later audit.Checkpoint
	require.Eventually(t, func() bool {
		msg, err := c.SignAuditCheckpoint(ctx, "arena")
		require.NoError(t, err)
		later, _, err = audit.OpenCheckpoint(msg, key)
		require.NoError(t, err)
		return later.Size == 5
	}, time.Minute, 20*time.Millisecond)
	cons, err := c.AuditConsistency(ctx, "arena", joined.Size, later.Size)
	require.NoError(t, err)
	require.NoError(t, audit.CheckConsistency(joined, later, hashesOf(t, cons.Proof)))
	es, err := c.Events(ctx, "arena", 5)
	require.NoError(t, err)
	ev, err := es.Next()
	require.NoError(t, err)
	require.NoError(t, es.Close())
	incl, err := c.AuditProof(ctx, "arena", 5, later.Size)
	require.NoError(t, err)
	require.NoError(t, audit.CheckInclusion(later, &ev, hashesOf(t, incl.Proof)))
	v := wire.Int(99)
	ev.Changes[0].Value = &v
	require.Error(t, audit.CheckInclusion(later, &ev, hashesOf(t, incl.Proof)), "a changed event does not check")

	rctx, stop := context.WithCancel(ctx)
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(rctx, []string{"--addr", n.http, "relay", "run", "--listen", "127.0.0.1:0",
			"--audit-key", keyPrefix + ".pub", "--checkpoint-interval", "20ms"}, strings.NewReader(""), &out, &errOut)
	}()
	listening := regexp.MustCompile(`relay listening on (\S+),`)
	var base string
	require.Eventually(t, func() bool {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = "http://" + m[1]
		}
		return base != ""
	}, 20*time.Second, 5*time.Millisecond, "stdout: %s stderr: %s", &out, &errOut)
	require.Equal(t, streamLines(t, "http://"+n.http, "arena", 5), streamLines(t, base, "arena", 5))
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/v1/worlds/arena/audit/checkpoint")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		cp, _, err := audit.OpenCheckpoint(b, key)
		require.NoError(t, err, "%s", b)
		return cp.Size == 5
	}, time.Minute, 20*time.Millisecond, "stderr: %s", &errOut)
	// The relay (a view that sees every field) checks the events it
	// received against the node's tree: the 5 leaves hash to its root.
	verified := regexp.MustCompile(`(?m)^gsd_relay_leaf_checks_total ([0-9.e+]+)$`)
	var b []byte
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/metrics")
		require.NoError(t, err)
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		m := verified.FindSubmatch(b)
		return m != nil && string(m[1]) != "0"
	}, time.Minute, 20*time.Millisecond, "stderr: %s", &errOut)
	require.NotContains(t, string(b), "gsd_relay_checkpoint_failures_total{", "nothing refused")
	require.NotContains(t, string(b), "gsd_relay_leaf_checks_skipped_total{", "nothing skipped")

	// The same relay behind a proxy that rewrites one event drops it.
	requireRelayDropsATamperingUpstream(t, ctx, n.http, keyPrefix+".pub")
	stop()
	select {
	case code := <-done:
		require.Equal(t, 0, code, "stderr: %s", &errOut)
	case <-time.After(20 * time.Second):
		t.Fatalf("gsdctl relay run did not stop: %s", &errOut)
	}
}

// hashesOf converts a proof's hashes from their wire form.
func hashesOf(t *testing.T, proof [][]byte) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(proof))
	for i, h := range proof {
		require.Len(t, h, tlog.HashSize)
		out[i] = tlog.Hash(h)
	}
	return out
}
